"""Conditional appends under concurrency, on every backend, with real threads.

Counted from the stored events, never from what the writers believe: a condition that let a
racing writer through shows up as a course over its capacity.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from esframework import (
    AppendCondition,
    ConditionFailedError,
    EventStore,
    NewEvent,
    Query,
    QueryItem,
)
from tests.conftest import BACKENDS
from tests.stores.test_contract import run_threads

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

COURSES = 4
CAPACITY = 3
STUDENTS = 10
LIMIT = 2


def subscribed(course: str, student: str) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        event_type="Subscribed",
        schema_version=1,
        data=orjson.dumps({"course": course, "student": student}).decode(),
        tags=(f"course:{course}", f"student:{student}"),
    )


def decision_query(course: str, student: str) -> Query:
    return Query.of(
        QueryItem(types=["Subscribed"], tags=[f"course:{course}"]),
        QueryItem(types=["Subscribed"], tags=[f"student:{student}"]),
    )


def try_subscribe(store: EventStore, course: str, student: str) -> str:
    """Decide on one read, append on its head: 'ok', 'full' or 'conflict'."""
    query = decision_query(course, student)
    seen = store.read_query(query)
    pairs = [orjson.loads(e.data) for e in seen.events]
    in_course = sum(p["course"] == course for p in pairs)
    of_student = sum(p["student"] == student for p in pairs)
    if (
        in_course >= CAPACITY
        or of_student >= LIMIT
        or {"course": course, "student": student} in pairs
    ):
        return "full"
    try:
        store.append(
            f"sub-{uuid.uuid4().hex}",
            "Subscription",
            [subscribed(course, student)],
            expected_version=0,
            condition=AppendCondition(query, seen.head),
        )
    except ConditionFailedError:
        return "conflict"
    return "ok"


def test_twenty_writers_never_break_capacities_or_limits(store: EventStore) -> None:
    """20 threads subscribe students to small courses: no course ends over capacity, no
    student over the limit, no pair twice, counted from the stored events."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def writer() -> None:
        rng = random.Random()
        barrier.wait()
        for _ in range(12):
            outcome = try_subscribe(
                store, f"c{rng.randrange(COURSES)}", f"s{rng.randrange(STUDENTS)}"
            )
            with lock:
                outcomes[outcome] += 1

    run_threads(writer, 20)
    stored = [
        orjson.loads(e.data)
        for e in store.read_query(Query.of(QueryItem(types=["Subscribed"]))).events
    ]
    per_course = Counter(p["course"] for p in stored)
    per_student = Counter(p["student"] for p in stored)
    assert max(per_course.values()) <= CAPACITY
    assert max(per_student.values()) <= LIMIT
    assert len({(p["course"], p["student"]) for p in stored}) == len(stored)
    assert outcomes["ok"] == len(stored)
    assert len(stored) > 0


def test_positions_read_are_monotonic_while_five_writers_append(store: EventStore) -> None:
    """A reader paging by query while 5 threads append sees increasing positions and heads,
    and, page after page, every matching event exactly once."""
    query = Query.of(QueryItem(tags=["mono"]))
    done = threading.Event()
    seen: list[int] = []
    heads: list[int] = []

    def writer() -> None:
        for i in range(20):
            store.append(
                f"m-{uuid.uuid4().hex}",
                "S",
                [
                    NewEvent(
                        uuid.uuid4(), "Tick", 1, orjson.dumps({"i": i}).decode(), tags=("mono",)
                    ),
                    NewEvent(uuid.uuid4(), "Tock", 1, "{}"),
                ],
                expected_version=0,
            )

    def reader() -> None:
        after = 0
        while True:
            finished = done.is_set()
            page = store.read_query(query, after=after, limit=7)
            seen.extend(e.position for e in page.events)
            heads.append(page.head)
            after = page.head
            if finished and not page.events:
                return

    reading = threading.Thread(target=reader)
    reading.start()
    try:
        run_threads(writer, 5)
    finally:
        done.set()
        reading.join()
    assert seen == sorted(set(seen))
    assert heads == sorted(heads)
    assert seen == [e.position for e in store.read_query(query).events]
    assert len(seen) == 100


def test_no_false_conflicts_for_queries_that_do_not_overlap(store: EventStore) -> None:
    """Writers whose queries share no event never fail each other's conditions."""
    failures: list[ConditionFailedError] = []

    def writer_for(tag: str) -> Callable[[], None]:
        query = Query.of(QueryItem(types=["Counted"], tags=[tag]))

        def write() -> None:
            for _ in range(10):
                seen = store.read_query(query)
                try:
                    store.append(
                        f"n-{uuid.uuid4().hex}",
                        "S",
                        [NewEvent(uuid.uuid4(), "Counted", 1, "{}", tags=(tag, "shared:other"))],
                        expected_version=0,
                        condition=AppendCondition(query, seen.head),
                    )
                except ConditionFailedError as error:
                    failures.append(error)

        return write

    threads = [threading.Thread(target=writer_for(f"own:{i}")) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for i in range(6):
        assert len(store.read_query(Query.of(QueryItem(tags=[f"own:{i}"]))).events) == 10
