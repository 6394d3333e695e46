"""Archiving: events of closed and truncated streams move to the archive table, on SQLite
and PostgreSQL, sync and async, and every reader still finds them where it should."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from esframework import (
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    EventStore,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StreamClosed,
    StreamClosedError,
    Subscription,
    SubscriptionWorker,
)
from esframework.errors import IdempotencyConflictError
from tests.conftest import Backend
from tests.domain import Wallet
from tests.stores.test_contract import make

DURABLE = ["sqlite", "postgres", "sqlite-async", "postgres-async"]

durable = pytest.mark.parametrize("backend", DURABLE, indirect=True)


def _archive_all(store: Any, batch: int = 3) -> int:
    total = 0
    while moved := store.archive(max_events=batch):
        assert moved > 0
        total += moved
    return total


def _execute(backend: Backend, statement: str) -> list[Any]:
    """Run SQL on the backend's database by hand (`{s}` before table names)."""
    raw = backend.raw
    if "sqlite" in backend.name:
        path = raw.sync.path if backend.loop is not None else raw.path
        with sqlite3.connect(path) as db:
            return db.execute(statement.format(s="")).fetchall()
    with psycopg.connect(raw.conninfo, autocommit=True) as conn:
        prefix = sql.Identifier(raw.schema).as_string(conn) + "."
        cursor = conn.execute(statement.format(s=prefix).encode())
        return cursor.fetchall() if cursor.description else []


def _count(backend: Backend, table: str) -> int:
    ((count,),) = _execute(backend, f"SELECT count(*) FROM {{s}}{table}")
    return int(count)


def _three_streams(store: EventStore) -> None:
    """`open` (4 events), `cut` (10, truncated before 6) and `closed` (3 and a tombstone)."""
    store.append("open", "S", make(4), expected_version=0)
    store.append("cut", "S", make(10), expected_version=0)
    store.save_snapshot(
        SnapshotRecord(stream_id="cut", stream_type="S", state_schema="x", version=7, data="{}")
    )
    store.truncate_before("cut", 6)
    store.append("closed", "S", make(3), expected_version=0)
    store.tombstone("closed", expected_version=3)


@durable
def test_archive_moves_the_truncated_part_and_keeps_every_position(backend: Backend) -> None:
    """Archiving moves exactly the events before each truncation point, in batches; global
    reads, stream reads and include_archived reads return what they did before."""
    store = backend.store
    _three_streams(store)
    everything = store.read_all()
    streams = {s: list(store.read_stream(s)) for s in ("open", "cut", "closed")}
    whole = {s: list(store.read_stream(s, include_archived=True)) for s in streams}
    assert store.archivable() == 5 + 3
    assert _archive_all(store) == 8
    assert store.archivable() == 0
    assert store.archive() == 0
    assert _count(backend, "events") == len(everything) - 8
    assert _count(backend, "events_archive") == 8
    assert store.read_all() == everything
    assert store.read_all(after=3, limit=5) == everything[3:8]
    assert list(store.iter_all(page_size=2)) == everything
    assert {s: list(store.read_stream(s)) for s in streams} == streams
    assert {s: list(store.read_stream(s, include_archived=True)) for s in streams} == whole
    assert [p.version for p in store.read_payloads("cut", include_archived=True)] == list(
        range(1, 11)
    )
    assert store.head() == everything[-1].position
    assert store.stored_event_types() == {"Happened", "$StreamClosed"}


@durable
def test_filtered_global_reads_merge_the_archive_in(backend: Backend) -> None:
    """Filters by stream and event type apply to archived events as to the others."""
    store = backend.store
    store.append("a", "A", make(3, kind="Old"), expected_version=0)
    store.append("b", "B", make(2, kind="Old"), expected_version=0)
    store.append("a", "A", make(2, kind="New"), expected_version=3)
    store.tombstone("a", expected_version=5)
    before = store.read_all(stream_types=["A"], event_types=["Old"])
    _archive_all(store)
    assert _count(backend, "events_archive") == 5
    assert store.read_all(stream_types=["A"], event_types=["Old"]) == before
    assert [e.version for e in store.read_all(stream_types=["A"])] == [1, 2, 3, 4, 5, 6]
    assert [e.stream_id for e in store.read_all(event_types=["Old"], limit=4)] == [
        "a",
        "a",
        "a",
        "b",
    ]


@durable
def test_loads_work_after_archiving(backend: Backend) -> None:
    """A truncated aggregate loads from its snapshot; its past, and a closed aggregate's
    final state, load from the archive."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    for amount in range(1, 10):
        wallet.add(Decimal(amount))
    wallets.save(wallet, snapshot=True)  # version 10
    wallet.add(Decimal(100))
    wallets.save(wallet)
    backend.store.truncate_before("w", 10)
    closing = Wallet.open("c", "Zoe")
    closing.add(Decimal(7))
    wallets.save(closing)
    wallets.tombstone(closing)
    _archive_all(backend.store)
    assert _count(backend, "events_archive") == 9 + 2
    assert wallets.load("w").balance == Decimal(145)
    assert wallets.load("w", at_version=4).balance == Decimal(6)
    with pytest.raises(StreamClosedError) as caught:
        wallets.load("c")
    assert wallets.load("c", at_version=caught.value.version - 1).balance == Decimal(7)
    assert [e.version for e in wallets.history("c", include_archived=True)] == [1, 2, 3]


@durable
def test_a_retried_append_of_archived_events_stores_nothing(backend: Backend) -> None:
    """Archived event ids stay taken: a retry reports the stored append (whatever it
    expected), different content under an archived id conflicts, and nothing is stored twice."""
    store = backend.store
    events = make(6)
    store.append("r", "S", events[:3], expected_version=0)
    store.append("r", "S", events[3:], expected_version=3)
    store.save_snapshot(
        SnapshotRecord(stream_id="r", stream_type="S", state_schema="x", version=5, data="{}")
    )
    store.truncate_before("r", 5)
    assert _archive_all(store) == 4
    rows = _count(backend, "events") + _count(backend, "events_archive")
    for expected in (0, ExpectedVersion.ANY):
        retried = store.append("r", "S", events[:3], expected_version=expected)
        assert (retried.stream_id, retried.version) == ("r", 3)
    changed = NewEvent(events[0].event_id, "Happened", 1, '{"n": 99}')
    with pytest.raises(IdempotencyConflictError):
        store.append("r", "S", [changed], expected_version=ExpectedVersion.ANY)
    with pytest.raises(IdempotencyConflictError):
        store.append("elsewhere", "S", [events[1]], expected_version=0)
    assert _count(backend, "events") + _count(backend, "events_archive") == rows
    assert store.stream_version("r") == 6


def _run_subscription(backend: Backend, name: str, seen: list[Envelope[Any]]) -> None:
    def handle(envelope: Envelope[Any], _: object) -> None:
        seen.append(envelope)

    async def handle_async(envelope: Envelope[Any], _: object) -> None:
        seen.append(envelope)

    if backend.loop is None:
        SubscriptionWorker(backend.raw, Subscription(name=name, handler=handle)).run(
            until_caught_up=True
        )
        return
    worker = AsyncSubscriptionWorker(
        backend.raw, AsyncSubscription(name=name, handler=handle_async)
    )
    backend.loop.run(worker.run(until_caught_up=True))


@durable
def test_subscriptions_behind_the_archive_get_its_events_in_order(backend: Backend) -> None:
    """A subscription whose checkpoint is before archived events receives them, in global
    order, with the rest; a new one receives everything; both are told of the tombstone."""
    wallets = backend.repository(Wallet)
    wallets.save(Wallet.open("early", "Ada"))
    behind: list[Envelope[Any]] = []
    _run_subscription(backend, "behind", behind)
    assert [e.position for e in behind] == [1]
    cut = Wallet.open("cut", "Bo")
    for amount in range(1, 6):
        cut.add(Decimal(amount))
    wallets.save(cut, snapshot=True)  # versions 1..6, snapshot at 6
    backend.store.truncate_before("cut", 6)
    closing = Wallet.open("closed", "Cy")
    closing.add(Decimal(1))
    wallets.tombstone(closing)  # versions 1..3
    assert _archive_all(backend.store) == 5 + 2
    everything = [e.position for e in backend.store.read_all()]
    assert len(everything) == 10
    _run_subscription(backend, "behind", behind)
    assert [e.position for e in behind] == everything
    fresh: list[Envelope[Any]] = []
    _run_subscription(backend, "fresh", fresh)
    assert [e.position for e in fresh] == everything
    (closed,) = [e for e in fresh if isinstance(e.event, StreamClosed)]
    assert (closed.stream_id, closed.version) == ("closed", 3)


@durable
def test_ordinary_changes_to_either_table_stay_refused(backend: Backend) -> None:
    """After archiving, a DELETE or UPDATE of events or of the archive is still refused, as
    are inserts into the archive that do not come from the archiving pass."""
    store = backend.store
    _three_streams(store)
    _archive_all(store)
    refused: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
    statements = [
        "DELETE FROM {s}events",
        "DELETE FROM {s}events WHERE stream_id = 'open'",
        "UPDATE {s}events SET version = version + 100",
        "DELETE FROM {s}events_archive",
        "UPDATE {s}events_archive SET event_data = event_data",
        "INSERT INTO {s}events_archive SELECT * FROM {s}events WHERE stream_id = 'open'",
    ]
    if "postgres" in backend.name:
        statements += ["TRUNCATE {s}events", "TRUNCATE {s}events_archive"]
    for statement in statements:
        with pytest.raises(refused):
            _execute(backend, statement)
    assert _count(backend, "events") == 4 + 5 + 1
    assert _count(backend, "events_archive") == 8


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_refuses_an_insert_after_a_tombstone_whoever_inserts(backend: Backend) -> None:
    """The file's triggers, not only the store, refuse an event after a tombstone and an
    archived event's id."""
    store = backend.store
    _three_streams(store)
    _archive_all(store)
    ((archived,),) = _execute(backend, "SELECT id FROM {s}events_archive LIMIT 1")
    insert = (
        "INSERT INTO events (id, stream_id, stream_type, event_type, event_data, version, "
        "created_at) VALUES (?, ?, 'S', 'E', '{}', ?, '2026-01-01')"
    )
    with sqlite3.connect(backend.raw.path) as db:
        with pytest.raises(sqlite3.IntegrityError, match="tombstone"):
            db.execute(insert, ("x", "closed", 5))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute(insert, (archived, "other", 1))


@durable
def test_times_map_to_the_same_version_and_position_after_archiving(backend: Backend) -> None:
    """`version_at` and `position_at` (and so `load(as_of=...)` and a subscription started
    at a time) count the archived events too: looking in `events` alone, a time before the
    archived part mapped to the first version and position left there, a later state."""
    store, wallets = backend.store, backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    wallets.save(wallet)
    for amount in range(1, 6):
        wallet.add(Decimal(amount))
        wallets.save(wallet)  # one append each: versions 1 to 6, each at its own time
    store.append("other", "S", make(1), expected_version=0)
    times = [e.recorded_at for e in store.read_stream("w")]
    before = [(store.version_at("w", t), store.position_at(t)) for t in times]
    states = [wallets.load("w", as_of=t).balance for t in times]
    wallets.take_snapshot(wallets.load("w"))
    store.truncate_before("w", 6)
    assert _archive_all(store) == 5
    assert [(store.version_at("w", t), store.position_at(t)) for t in times] == before
    assert [wallets.load("w", as_of=t).balance for t in times] == states
