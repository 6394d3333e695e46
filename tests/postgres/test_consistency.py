"""Conditional appends on PostgreSQL, where positions come after commit: late commits,
in-flight appends, locks that leave unrelated appends alone, and deadlocks, with real
threads on their own connections."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import pytest

from esframework import (
    AppendCondition,
    ConditionFailedError,
    NewEvent,
    Query,
    QueryItem,
)
from esframework.errors import AppendDeadlockError
from esframework.postgres import PostgresEventStore
from esframework.postgres._sql import dcb_key, lease_key_halves

WAIT = 30.0  # seconds before a state the test waits for counts as never reached


def tagged(kind: str, *tags: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, 1, orjson.dumps({"k": kind}).decode(), tags=tags)


def stream() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.01)


def waiting_for_tag(dsn: str, schema: str, tag: str) -> bool:
    """Whether some transaction waits for the lock of `tag` (a conditional append does)."""
    high, low = lease_key_halves(dcb_key(schema, "tag", tag))
    with psycopg.connect(dsn, autocommit=True) as conn:
        ((count,),) = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (high, low),
        ).fetchall()
    return int(count) > 0


class Held:
    """A thread that runs `work` in a unit of work and keeps it open until released."""

    def __init__(self, store: PostgresEventStore, work: Callable[[], Any]) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(store, work))
        self._thread.start()
        assert self.entered.wait(WAIT), "the unit of work never began"
        if self.error is not None:
            raise self.error

    def _run(self, store: PostgresEventStore, work: Callable[[], Any]) -> None:
        try:
            with store.transaction():
                work()
                self.entered.set()
                self.release.wait(WAIT)
        except BaseException as error:  # surface it in the test
            self.error = error
            self.entered.set()

    def commit(self) -> None:
        self.release.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


def course_query(course: str) -> Query:
    return Query.of(QueryItem(types=["Subscribed"], tags=[f"course:{course}"]))


def test_late_commit_in_flight_fails_the_conditional_append(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """An unconditional append with a matching tag, open while a decision reads and still
    open when it appends, makes that append fail once it commits: the conditional append
    waits for it instead of missing it."""
    store = postgres_store
    query = course_query("late")
    slow = Held(
        store,
        lambda: store.append(
            stream(), "S", [tagged("Subscribed", "course:late")], expected_version=0
        ),
    )
    seen = store.read_query(query)
    assert seen.events == []  # not committed yet: invisible to the read
    outcome: list[BaseException | None] = []

    def decide() -> None:
        try:
            store.append(
                stream(),
                "S",
                [tagged("Subscribed", "course:late")],
                expected_version=0,
                condition=AppendCondition(query, seen.head),
            )
            outcome.append(None)
        except BaseException as error:  # the outcome under test
            outcome.append(error)

    deciding = threading.Thread(target=decide)
    deciding.start()
    wait_until(
        lambda: waiting_for_tag(postgres_dsn, store.schema, "course:late") or bool(outcome),
        "the conditional append waiting for the slow one",
    )
    assert outcome == []  # still waiting for the slow append
    slow.commit()
    deciding.join()
    (error,) = outcome
    assert isinstance(error, ConditionFailedError)
    assert error.after == seen.head
    assert len(store.read_query(query).events) == 1


def test_late_commit_before_the_append_fails_it_positioned_or_not(
    postgres_store: PostgresEventStore,
) -> None:
    """The slow append commits after the read and before the conditional append: the
    condition finds its event whether the sequencer positioned it yet or not."""
    store = postgres_store
    query = course_query("later")
    slow = Held(
        store,
        lambda: store.append(
            stream(), "S", [tagged("Subscribed", "course:later")], expected_version=0
        ),
    )
    seen = store.read_query(query)
    slow.commit()
    with pytest.raises(ConditionFailedError) as caught:
        store.append(
            stream(),
            "S",
            [tagged("Subscribed", "course:later")],
            expected_version=0,
            condition=AppendCondition(query, seen.head),
        )
    assert caught.value.position == 0 or caught.value.position > seen.head
    assert len(store.read_query(query).events) == 1


def test_an_open_conditional_unit_leaves_unrelated_appends_alone(
    postgres_store: PostgresEventStore,
) -> None:
    """While a unit of work holds a conditional append's exclusive lock and a tagged
    append, appends with other tags, untagged appends and conditional appends on other
    tags all complete."""
    store = postgres_store
    mine = course_query("held")

    def open_decision() -> None:
        store.append(
            stream(),
            "S",
            [tagged("Subscribed", "course:held")],
            expected_version=0,
            condition=AppendCondition(mine, store.read_query(mine).head),
        )

    held = Held(store, open_decision)
    other = course_query("free")
    store.append(stream(), "S", [tagged("Subscribed", "course:free")], expected_version=0)
    store.append(stream(), "Account", [tagged("Opened")], expected_version=0)
    store.append(
        stream(),
        "S",
        [tagged("Subscribed", "course:free", "student:x")],
        expected_version=0,
        condition=AppendCondition(other, store.read_query(other).head),
    )
    assert len(store.read_query(other).events) == 2  # done while the unit is still open
    held.commit()
    assert len(store.read_query(mine).events) == 1


def test_units_of_work_that_deadlock_fail_with_a_specific_error(
    postgres_store: PostgresEventStore,
) -> None:
    """Two units each tag an event the other's condition then locks: PostgreSQL cancels
    one; it fails with AppendDeadlockError having written nothing, the other commits."""
    store = postgres_store
    barrier = threading.Barrier(2)
    outcomes: dict[str, BaseException | None] = {}

    def unit(own: str, other: str) -> None:
        query = Query.of(QueryItem(tags=[other]))
        try:
            with store.transaction():
                store.append(stream(), "S", [tagged("Tagged", own)], expected_version=0)
                barrier.wait(WAIT)
                store.append(
                    stream(),
                    "S",
                    [tagged("Decided", f"decided:{own}")],
                    expected_version=0,
                    condition=AppendCondition(query, store.read_query(query).head),
                )
            outcomes[own] = None
        except BaseException as error:  # the outcome under test
            outcomes[own] = error

    threads = [
        threading.Thread(target=unit, args=("dl:a", "dl:b")),
        threading.Thread(target=unit, args=("dl:b", "dl:a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [k for k, v in outcomes.items() if v is not None]
    assert len(failed) == 1, outcomes
    assert isinstance(outcomes[failed[0]], AppendDeadlockError)
    assert "deadlocked" in str(outcomes[failed[0]])
    written = store.read_query(Query.of(QueryItem(tags=[failed[0]]))).events
    assert written == []
