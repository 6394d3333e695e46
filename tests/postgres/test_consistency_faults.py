"""Conditional appends and decisions on PostgreSQL under real faults: lost answers (a proxy
that cuts the connection), units of work rolled back, untagged conditions racing plain
appends, events a killed process committed without positions, and kill -9 of the server.
Real connections and threads; outcomes are counted from the stored events."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import orjson
import psycopg
import pytest
from psycopg import sql

from esframework import (
    AppendCondition,
    ConditionFailedError,
    Decisions,
    ExpectedVersion,
    Query,
    QueryItem,
)
from esframework.errors import StoreUnavailableError
from esframework.postgres import PostgresEventStore
from esframework.postgres._sql import dcb_key, lease_key_halves, stream_lock_key
from tests.conftest import Backend
from tests.fixtures.cluster import Cluster
from tests.fixtures.proxy import FaultyProxy
from tests.postgres.test_consistency import WAIT, stream, tagged, wait_until
from tests.stores.test_query_faults import Room, SeatBooked


@pytest.fixture
def proxy(postgres_dsn: str) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(postgres_dsn)
    yield faulty
    faulty.close()


def proxied_store(proxy: FaultyProxy, schema: str) -> PostgresEventStore:
    store = PostgresEventStore(
        proxy.dsn, schema=schema, min_size=1, max_size=1, pool_timeout=5, reconnect_attempts=2
    )
    store.head()  # a warm connection: the next answer the proxy cuts is the append's
    return store


@pytest.mark.parametrize("after", ["head", "none"])
def test_conditional_append_whose_answer_was_lost_is_reported_appended(
    postgres_store: PostgresEventStore, proxy: FaultyProxy, after: str
) -> None:
    """The conditional append commits, the client never hears; the store's retry finds its
    own events (which now fail the condition) and reports the append, written once."""
    query = Query.of(QueryItem(types=["Booked"], tags=["room:lost"]))
    postgres_store.append(stream(), "S", [tagged("Other", "room:lost")], expected_version=0)
    with proxied_store(proxy, postgres_store.schema) as store:
        seen = store.read_query(query)
        condition = AppendCondition(query, seen.head if after == "head" else None)
        booking = stream()
        proxy.cut_next_response()
        result = store.append(
            booking,
            "S",
            [tagged("Booked", "room:lost"), tagged("Booked", "room:lost", "guest:g")],
            expected_version=0,
            condition=condition,
        )
        assert result.version == 2
        # A second decision on the same read fails, on the events of the first.
        with pytest.raises(ConditionFailedError):
            store.append(
                stream(),
                "S",
                [tagged("Booked", "room:lost")],
                expected_version=0,
                condition=condition,
            )
    stored = postgres_store.read_query(query).events
    assert [(e.stream_id, e.version) for e in stored] == [(booking, 1), (booking, 2)]


def test_refused_conditional_append_whose_answer_was_lost_is_refused_again(
    postgres_store: PostgresEventStore, proxy: FaultyProxy
) -> None:
    """The server refuses the append (its condition fails) and the refusal is lost: the
    store's retry must report the conflict, having written nothing."""
    query = Query.of(QueryItem(types=["Booked"], tags=["room:refused"]))
    with proxied_store(proxy, postgres_store.schema) as store:
        seen = store.read_query(query)
        postgres_store.append(stream(), "S", [tagged("Booked", "room:refused")], expected_version=0)
        proxy.cut_next_response()
        with pytest.raises(ConditionFailedError) as failed:
            store.append(
                stream(),
                "S",
                [tagged("Booked", "room:refused")],
                expected_version=0,
                condition=AppendCondition(query, seen.head),
            )
        assert failed.value.after == seen.head
    assert len(postgres_store.read_query(query).events) == 1


def test_unit_whose_commit_answer_was_lost_is_retried_whole_and_written_once(
    postgres_store: PostgresEventStore, proxy: FaultyProxy
) -> None:
    """A unit of work with two conditional appends commits, but its COMMIT's answer is lost:
    the caller cannot know, and runs the unit again with the same events and conditions.
    The retry is a no-op that reports each append, though both conditions now fail."""
    query = Query.of(QueryItem(types=["Booked"], tags=["room:unit"]))
    with proxied_store(proxy, postgres_store.schema) as store:
        seen = store.read_query(query)
        first, second = stream(), stream()
        booking = [tagged("Booked", "room:unit")]
        receipt = [tagged("Receipt", "room:unit")]
        receipts = Query.of(QueryItem(types=["Receipt"]))

        def unit(*, cut: bool) -> tuple[int, int]:
            with store.transaction():
                a = store.append(
                    first,
                    "S",
                    booking,
                    expected_version=0,
                    condition=AppendCondition(query, seen.head),
                )
                b = store.append(
                    second, "S", receipt, expected_version=0, condition=AppendCondition(receipts)
                )
                if cut:
                    proxy.cut_next_response()  # the next answer is the COMMIT's
            return a.version, b.version

        # The COMMIT's answer is cut (or, rarely, an answer to the store's sequencer, whose
        # connection goes through the proxy too: then the unit succeeds, and so must its rerun).
        with contextlib.suppress(StoreUnavailableError):
            unit(cut=True)
        assert unit(cut=False) == (1, 1)
    stored = postgres_store.read_query(Query.of(QueryItem(tags=["room:unit"]))).events
    assert [e.stream_id for e in stored] == [first, second]


def test_conditional_append_in_a_rolled_back_unit_writes_nothing_and_fails_no_one(
    postgres_store: PostgresEventStore,
) -> None:
    """A unit of work whose conditional append succeeded, then rolled back: its events are
    gone, its locks released, and a later decision on the same read succeeds."""
    store = postgres_store
    query = Query.of(QueryItem(types=["Booked"], tags=["room:undo"]))
    seen = store.read_query(query)
    condition = AppendCondition(query, seen.head)

    class UndoError(Exception):
        pass

    with pytest.raises(UndoError), store.transaction():
        store.append(
            stream(), "S", [tagged("Booked", "room:undo")], expected_version=0, condition=condition
        )
        # The unit sees its own conditional append: a second one on the same read fails...
        with pytest.raises(ConditionFailedError) as failed:
            store.append(
                stream(),
                "S",
                [tagged("Booked", "room:undo")],
                expected_version=0,
                condition=condition,
            )
        assert failed.value.position == 0  # not positioned: it has not committed
        # ...and the unit can still go on (the failure rolled back to a savepoint).
        store.append(stream(), "S", [tagged("Note")], expected_version=0)
        raise UndoError
    assert store.read_query(Query.all()).events == []
    assert store.unpositioned() == 0
    winner = stream()
    done: list[object] = []
    # In another thread, on another connection: it must not wait for a lock left behind.
    thread = threading.Thread(
        target=lambda: done.append(
            store.append(
                winner,
                "S",
                [tagged("Booked", "room:undo")],
                expected_version=0,
                condition=condition,
            )
        )
    )
    thread.start()
    thread.join(WAIT)
    assert done, "the decision after the rollback never finished"
    assert [e.stream_id for e in store.read_query(query).events] == [winner]


@pytest.mark.parametrize(
    "query",
    [Query.of(QueryItem(types=["Ping"])), Query.all()],
    ids=["types only", "all events"],
)
def test_untagged_condition_racing_plain_appends_never_misses_one(
    postgres_store: PostgresEventStore, postgres_dsn: str, query: Query
) -> None:
    """Deciders condition on an event type (no tags) while writers append that type with no
    condition (or on all events). Positions follow commit order, so no matching event may
    lie between the head a successful decision read and its own event's position."""
    store = postgres_store
    stop = threading.Event()
    decided: list[tuple[int, uuid.UUID]] = []  # (head read, event id)
    failed: list[BaseException] = []
    conflicts = Counter[str]()

    def ping(n: int) -> None:
        with PostgresEventStore(postgres_dsn, schema=store.schema, max_size=1) as own:
            while not stop.is_set():
                own.append(stream(), "P", [tagged("Ping", f"w:{n}")], expected_version=0)

    def decide() -> None:
        with PostgresEventStore(postgres_dsn, schema=store.schema, max_size=1) as own:
            while not stop.is_set() and len(decided) < 30:
                seen = own.read_query(query, after=max(0, own.head() - 5))
                pong = tagged("Pong")
                try:
                    own.append(
                        stream(),
                        "D",
                        [pong],
                        expected_version=0,
                        condition=AppendCondition(query, seen.head),
                    )
                except ConditionFailedError:
                    conflicts["conflict"] += 1
                    continue
                decided.append((seen.head, pong.event_id))

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # surfaced below
                failed.append(error)
                stop.set()

        return run

    threads = [threading.Thread(target=guarded(functools.partial(ping, n))) for n in range(2)]
    threads += [threading.Thread(target=guarded(decide)) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 8
    while len(decided) < 30 and time.monotonic() < deadline and not failed:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failed, failed
    store.sequence()
    stored = store.read_all(limit=1_000_000)
    assert store.unpositioned() == 0
    pings = [e.position for e in stored if query.matches(e.event_type, e.tags)]
    where = {e.event_id: e.position for e in stored}
    assert pings, "no writer appended"
    assert decided, f"no decision succeeded ({conflicts})"
    for head, event_id in decided:
        position = where[event_id]
        missed = [p for p in pings if head < p < position]
        assert not missed, f"a decision read up to {head} and landed at {position}: {missed}"


# Decisions: a conflict on an event a killed process committed but never positioned.


def insert_unpositioned(dsn: str, schema: str, room: str) -> None:
    """Commit a booking without a global position: what a process killed between its
    append's commit and its sequencing pass leaves behind (its row, its tags, no position)."""
    booking = tagged("QueryFaultsSeatBooked", f"room:{room}", "guest:ghost")
    data = orjson.dumps({"room": room, "guest": "ghost"}).decode()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.events (id, stream_id, stream_type, event_type, schema_version, "
                "event_data, metadata, version, tags) VALUES (%s, %s, 'Ghost', %s, 1, %s, '{{}}', "
                "1, %s)"
            ).format(sql.Identifier(schema)),
            (booking.event_id, stream(), booking.event_type, data, list(booking.tags)),
        )


def test_decide_outlasts_a_conflict_with_an_event_a_killed_process_left_unpositioned(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """A booking committed, unpositioned, after the decision's store began: every read misses
    it and every conditional append fails on it (position 0). `decide` must not give up: it
    must end with the booking read and counted, not with ConditionFailedError."""
    store = postgres_store
    decisions = Decisions(store)
    (room,) = decisions.read(Room("r"))  # the store's first read: its sequencer has run
    assert room.booked == 0
    insert_unpositioned(postgres_dsn, store.schema, "r")
    seen: list[int] = []

    def book(room: Room) -> list[object]:
        seen.append(room.booked)
        return [SeatBooked(room="r", guest="g")]

    result = decisions.decide(book, Room("r"))
    assert result is not None
    assert seen[-1] == 1, f"the last decision did not count the ghost's booking: {seen}"
    (room,) = decisions.read(Room("r"))
    assert room.booked == 2


# kill -9 of the server while deciders append conditionally.


CAPACITY = 3
COURSES = [f"c{n}" for n in range(12)]


def test_kill_9_during_conditional_appends_breaks_no_capacity_and_writes_no_part(
    cluster: Cluster,
) -> None:
    """Deciders fill courses of small capacity, each decision two events (a subscription and
    a receipt), until the server is killed. After the restart, counted from the stored
    events: no course over capacity, every decision whole, every acknowledged one there."""
    acknowledged: list[str] = []
    stop = threading.Event()

    def decider(n: int, store: PostgresEventStore) -> None:
        turn = 0
        while not stop.is_set():
            course = COURSES[(n + turn) % len(COURSES)]
            turn += 1
            query = Query.of(QueryItem(types=["Subscribed"], tags=[f"course:{course}"]))
            try:
                seen = store.read_query(query)
                if len(seen.events) >= CAPACITY:
                    continue
                decision = stream()
                store.append(
                    decision,
                    "Decision",
                    [
                        tagged("Subscribed", f"course:{course}", f"student:{n}-{turn}"),
                        tagged("Receipt", f"course:{course}"),
                    ],
                    expected_version=0,
                    condition=AppendCondition(query, seen.head),
                )
            except ConditionFailedError:
                continue
            except Exception:  # the server is gone
                return
            acknowledged.append(decision)

    store = PostgresEventStore(cluster.dsn, schema="dcb", reconnect_attempts=0)
    store.migrate()
    threads = [threading.Thread(target=decider, args=(n, store)) for n in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 12, "a dozen decisions acknowledged")
    cluster.kill()
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    cluster.start()
    with PostgresEventStore(cluster.dsn, schema="dcb") as after:
        after.sequence()
        stored = after.read_all(limit=1_000_000)
        assert after.unpositioned() == 0
        # The store still decides after the crash: a course with room takes one more.
        spare = "spare"
        query = Query.of(QueryItem(types=["Subscribed"], tags=[f"course:{spare}"]))
        seen = after.read_query(query)
        after.append(
            stream(),
            "Decision",
            [tagged("Subscribed", f"course:{spare}")],
            expected_version=0,
            condition=AppendCondition(query, seen.head),
        )
    per_stream = Counter(e.stream_id for e in stored)
    assert set(per_stream.values()) == {2}, "a decision stored in part"
    subscriptions = Counter(e.tags[0] for e in stored if e.event_type == "Subscribed")
    assert max(subscriptions.values()) <= CAPACITY, subscriptions
    assert set(acknowledged) <= set(per_stream), "an acknowledged decision was lost"
    # increasing, not gap-free: see test_lost_passes.py
    found = [e.position for e in stored]
    assert found == sorted(set(found))


# A conditional append expecting any version, that loses its stream's version race.


def waiting_for_key(dsn: str, key: int) -> bool:
    """Whether some transaction waits for the advisory lock `key`."""
    high, low = lease_key_halves(key)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ((count,),) = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (high, low),
        ).fetchall()
    return int(count) > 0


class Held:
    """A thread that runs `work` in a unit of work and keeps it open until released."""

    def __init__(self, store: PostgresEventStore, work: Callable[[], object]) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(store, work))
        self._thread.start()
        assert self.entered.wait(WAIT), "the unit of work never began"
        if self.error is not None:
            raise self.error

    def _run(self, store: PostgresEventStore, work: Callable[[], object]) -> None:
        try:
            with store.transaction():
                work()
                self.entered.set()
                self.release.wait(WAIT)
        except BaseException as error:  # surfaced in the test
            self.error = error
            self.entered.set()

    def commit(self) -> None:
        self.release.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


def test_any_version_conditional_append_that_lost_its_stream_race_fails_its_condition(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """An append expecting any version reads its stream's version before it waits for the
    stream's lock, so on a busy stream it may lose the version (unique violation) and try
    again in line. If a matching event committed in between, that second try fails the
    condition: the caller must get ConditionFailedError (read, decide, append again), not a
    StoreError. The steps are ordered by locks, not by time:

    1. a unit appends to stream X expecting any version, and stays open (X's lock);
    2. a unit holds the type key of `late` exclusively (a condition on that type);
    3. the decision appends a `late` event tagged room:r to X, expecting any version: it
       waits for X, then (once 1 commits) takes room:r exclusively and waits for 2;
    4. a plain append of a matching booking waits for room:r;
    5. 2 commits: the decision inserts X's stale version and fails, releasing room:r; the
       booking commits; the decision's try in line finds it."""
    store = postgres_store
    schema = store.schema
    room = "room:r"
    # A type whose key sorts after room:r's: the decision takes room:r before waiting on it.
    late = next(
        f"Late{n}"
        for n in range(1000)
        if dcb_key(schema, "type", f"Late{n}") > dcb_key(schema, "tag", room)
    )
    query = Query.of(QueryItem(types=["Booked"], tags=[room]))
    store.append("X", "S", [tagged("Other")], expected_version=0)
    busy = Held(
        store,
        lambda: store.append("X", "S", [tagged("Other")], expected_version=ExpectedVersion.ANY),
    )
    blocker = Held(
        store,
        lambda: store.append(
            stream(),
            "S",
            [tagged("Blocker")],
            expected_version=0,
            condition=AppendCondition(Query.of(QueryItem(types=[late]))),
        ),
    )
    seen = store.read_query(query)
    outcome: list[object] = []

    def decide() -> None:
        try:
            outcome.append(
                store.append(
                    "X",
                    "S",
                    [tagged(late, room)],
                    expected_version=ExpectedVersion.ANY,
                    condition=AppendCondition(query, seen.head),
                )
            )
        except BaseException as error:  # the outcome under test
            outcome.append(error)

    deciding = threading.Thread(target=decide)
    deciding.start()
    wait_until(
        lambda: waiting_for_key(postgres_dsn, stream_lock_key(schema, "X")) or bool(outcome),
        "the decision waiting for stream X",
    )
    busy.commit()
    wait_until(
        lambda: waiting_for_key(postgres_dsn, dcb_key(schema, "type", late)) or bool(outcome),
        "the decision waiting for the blocker, holding room:r",
    )
    booked: list[object] = []
    booking = threading.Thread(
        target=lambda: booked.append(
            store.append(stream(), "S", [tagged("Booked", room)], expected_version=0)
        )
    )
    booking.start()
    wait_until(
        lambda: waiting_for_key(postgres_dsn, dcb_key(schema, "tag", room)) or bool(outcome),
        "the booking waiting for the decision",
    )
    blocker.commit()
    deciding.join(WAIT)
    booking.join(WAIT)
    assert booked, "the booking never landed"
    (error,) = outcome
    assert isinstance(error, ConditionFailedError), repr(error)
    assert error.after == seen.head
    assert [e.event_type for e in store.read_stream("X")] == ["Other", "Other"]


@pytest.mark.parametrize("limit", [0, 1])
def test_a_read_cut_short_returns_a_head_that_passes_no_match(
    postgres_store: PostgresEventStore, limit: int
) -> None:
    """A read cut short (at 0 events too) saw the store only up to what it returned: a
    decision appending on its head must still fail on the matching events it never read."""
    store = postgres_store
    query = Query.of(QueryItem(tags=["x"]))
    store.append(stream(), "S", [tagged("A", "x"), tagged("A", "x")], expected_version=0)
    seen = store.read_query(query, limit=limit)
    assert len(seen.events) == limit
    assert seen.head == limit
    with pytest.raises(ConditionFailedError) as failed:
        store.append(
            stream(),
            "S",
            [tagged("A", "x")],
            expected_version=0,
            condition=AppendCondition(query, seen.head),
        )
    assert failed.value.position == limit + 1


# A unit of work's retry of an event another transaction committed: not the unit's own.


@pytest.mark.parametrize("backend", ["postgres", "postgres-async"], indirect=True)
def test_a_condition_does_not_pass_over_an_event_the_unit_only_retried(
    backend: Backend, postgres_dsn: str
) -> None:
    """Another transaction committed a booking that has no position yet; a unit of work
    reads the room (the booking is not there), retries that booking's append (a no-op),
    and appends with a condition on its read naming the booking's id in `seen`. The unit
    never wrote the booking, so it is not its own: the condition must fail on it, as on the
    stores that position events at once. (The unit counted a retry's ids among its own, so
    the check passed over the booking, and a decision that never read it went through.)"""
    store = backend.store
    schema = backend.raw.schema
    query = Query.of(QueryItem(tags=["room:retried"]))
    store.head()  # the store's sequencer has run: the booking below stays unpositioned
    booking = tagged("QueryFaultsSeatBooked", "room:retried")
    ghost = stream()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.events (id, stream_id, stream_type, event_type, schema_version, "
                "event_data, metadata, version, tags) VALUES (%s, %s, 'Ghost', %s, 1, %s, '{{}}', "
                "1, %s)"
            ).format(sql.Identifier(schema)),
            (booking.event_id, ghost, booking.event_type, booking.data, list(booking.tags)),
        )
    retried = tagged("Booked", "room:retried")
    if backend.loop is None:
        with pytest.raises(ConditionFailedError), store.transaction():
            read = store.read_query(query)
            assert read.events == []
            store.append(ghost, "Ghost", [booking], expected_version=0)  # a retry: no-op
            condition = AppendCondition(query, after=read.head, seen={booking.event_id})
            store.append(stream(), "S", [retried], expected_version=0, condition=condition)
    else:
        raw = backend.raw

        async def body() -> None:
            async with raw.transaction():
                read = await raw.read_query(query)
                assert read.events == []
                await raw.append(ghost, "Ghost", [booking], expected_version=0)
                condition = AppendCondition(query, after=read.head, seen={booking.event_id})
                await raw.append(stream(), "S", [retried], expected_version=0, condition=condition)

        with pytest.raises(ConditionFailedError):
            backend.loop.run(body())
    assert retried.event_id not in {e.event_id for e in store.read_all()}
