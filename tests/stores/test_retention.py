"""Closing and truncating streams: the same promises on every backend, sync and async."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from esframework import (
    ConcurrencyError,
    EventPayload,
    EventStore,
    ExpectedVersion,
    Metadata,
    NewEvent,
    SnapshotRecord,
    StreamClosed,
    StreamClosedError,
    aggregate_version,
)
from esframework._checks import DEFAULT_PAGE_SIZE
from esframework._retention import CLOSED_EVENT_TYPE
from esframework.errors import IdempotencyConflictError, InvalidTruncationError
from esframework.postgres._store import STREAM_PAGE_SIZE
from tests.conftest import Backend
from tests.domain import SnapshottedWallet, Wallet
from tests.stores.test_contract import make
from tests.stores.test_unit_of_work import BoomError, run


def _snapshot(store: EventStore, stream_id: str, version: int) -> None:
    store.save_snapshot(
        SnapshotRecord(
            stream_id=stream_id, stream_type="S", state_schema="x", version=version, data="{}"
        )
    )


def test_tombstone_takes_the_next_version_and_closes_the_stream(store: EventStore) -> None:
    """A tombstone is the stream's next event; every later append fails naming the stream
    and the tombstone's version, and writes nothing."""
    store.append("s", "S", make(3), expected_version=0)
    closed = store.tombstone("s", expected_version=3)
    assert (closed.stream_id, closed.version) == ("s", 4)
    head = store.head()
    for expected in (4, 3, ExpectedVersion.ANY, ExpectedVersion.NO_STREAM):
        with pytest.raises(StreamClosedError) as caught:
            store.append("s", "S", make(2), expected_version=expected)
        assert (caught.value.stream_id, caught.value.version) == ("s", 4)
        assert "'s'" in str(caught.value)
        assert "version 4" in str(caught.value)
    assert store.stream_version("s") == 4
    assert store.head() == head
    error = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 -- our own error
    assert (error.stream_id, error.version) == ("s", 4)


def test_tombstone_is_a_stored_event_of_the_reserved_type(store: EventStore) -> None:
    """The tombstone is in the global order, of the stream's type, with the metadata given."""
    store.append("s", "S", make(2), expected_version=0)
    store.tombstone("s", expected_version=2, metadata='{"reason": "done"}')
    last = store.read_all()[-1]
    assert (last.stream_id, last.stream_type, last.version) == ("s", "S", 3)
    assert last.event_type == CLOSED_EVENT_TYPE
    assert orjson.loads(last.metadata) == {"reason": "done"}
    assert CLOSED_EVENT_TYPE in store.stored_event_types()


def test_tombstone_checks_the_expected_version(store: EventStore) -> None:
    """A tombstone at a stale version is a concurrency conflict and closes nothing."""
    store.append("s", "S", make(3), expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        store.tombstone("s", expected_version=2)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    store.append("s", "S", make(1), expected_version=3)  # still open
    assert store.tombstone("s", expected_version=ExpectedVersion.ANY).version == 5


def test_closing_again_is_an_idempotent_retry(store: EventStore) -> None:
    """Closing a closed stream again with the same metadata reports the stored tombstone;
    with other metadata it raises StreamClosedError."""
    store.append("s", "S", make(1), expected_version=0)
    first = store.tombstone("s", expected_version=1, metadata='{"by": "ada"}')
    again = store.tombstone("s", expected_version=1, metadata='{"by": "ada"}')
    assert (again.stream_id, again.version) == (first.stream_id, first.version)
    with pytest.raises(StreamClosedError) as caught:
        store.tombstone("s", expected_version=2, metadata='{"by": "zoe"}')
    assert caught.value.version == 2
    assert store.stream_version("s") == 2


def test_tombstone_reads_the_stream_type_or_needs_it(store: EventStore) -> None:
    """Without stream_type the tombstone takes the stream's own; a stream with no events
    needs it, and closing that one keeps its id from ever being used."""
    with pytest.raises(ValueError, match="stream_type"):
        store.tombstone("never", expected_version=ExpectedVersion.NO_STREAM)
    assert store.stream_version("never") == 0
    burned = store.tombstone("never", expected_version=0, stream_type="S")
    assert burned.version == 1
    with pytest.raises(StreamClosedError):
        store.append("never", "S", make(1), expected_version=1)


def test_a_tombstone_must_end_its_append(store: EventStore) -> None:
    """An append with events after a tombstone is refused before anything is written."""
    tombstone = NewEvent(uuid.uuid4(), CLOSED_EVENT_TYPE, 1, "{}")
    with pytest.raises(ValueError, match="last event"):
        store.append("s", "S", [tombstone, *make(1)], expected_version=0)
    assert store.stream_version("s") == 0


def test_a_closed_stream_reads_as_its_tombstone_unless_archived_ones_are_asked_for(
    store: EventStore,
) -> None:
    """Closing truncates the stream before its tombstone; include_archived reads it all."""
    store.append("s", "S", make(3), expected_version=0)
    store.tombstone("s", expected_version=3)
    assert [e.version for e in store.read_stream("s")] == [4]
    assert [e.version for e in store.read_payloads("s")] == [4]
    assert [e.version for e in store.read_stream("s", include_archived=True)] == [1, 2, 3, 4]
    archived = store.read_payloads("s", from_version=2, to_version=3, include_archived=True)
    assert [e.version for e in archived] == [2, 3]
    assert [e.version for e in store.read_all() if e.stream_id == "s"] == [1, 2, 3, 4]


def test_truncate_before_needs_a_snapshot_at_or_after_the_version(store: EventStore) -> None:
    """Truncating is refused below 1, without a snapshot, and past the snapshot; nothing
    is written then."""
    store.append("s", "S", make(10), expected_version=0)
    with pytest.raises(InvalidTruncationError, match="no snapshot") as caught:
        store.truncate_before("s", 3)
    assert (caught.value.stream_id, caught.value.version) == ("s", 3)
    assert caught.value.snapshot_version is None
    assert isinstance(caught.value, ValueError)
    _snapshot(store, "s", 6)
    with pytest.raises(InvalidTruncationError, match="version 6") as caught:
        store.truncate_before("s", 7)
    assert caught.value.snapshot_version == 6
    with pytest.raises(InvalidTruncationError, match="start at 1"):
        store.truncate_before("s", 0)
    assert [e.version for e in store.read_stream("s")] == list(range(1, 11))


def test_truncate_before_takes_an_int_only(store: EventStore) -> None:
    """A version that is no int is refused before anything is written: 1.5 broke every read
    of the stream on the memory store, and SQLite and PostgreSQL rounded it up."""
    store.append("s", "S", make(4), expected_version=0)
    _snapshot(store, "s", 3)
    version: Any
    for version in (1.5, 2.0, True, "2", None):
        with pytest.raises(InvalidTruncationError, match="whole number") as caught:
            store.truncate_before("s", version)
        assert caught.value.version is version
    assert [e.version for e in store.read_stream("s")] == [1, 2, 3, 4]
    store.truncate_before("s", 2)
    assert [e.version for e in store.read_stream("s")] == [2, 3, 4]


def test_a_truncated_stream_reads_from_its_truncation_point(store: EventStore) -> None:
    """Stream reads skip the truncated part; global reads and include_archived do not; an
    earlier truncation point never moves the point back."""
    store.append("s", "S", make(10), expected_version=0)
    _snapshot(store, "s", 6)
    store.truncate_before("s", 5)
    assert [e.version for e in store.read_stream("s")] == [5, 6, 7, 8, 9, 10]
    assert [e.version for e in store.read_stream("s", from_version=7)] == [7, 8, 9, 10]
    assert [e.version for e in store.read_payloads("s", to_version=6)] == [5, 6]
    assert list(store.read_stream("s", to_version=4)) == []
    assert len(list(store.read_stream("s", include_archived=True))) == 10
    assert len(store.read_all()) == 10
    store.truncate_before("s", 2)  # earlier: nothing changes
    assert next(e.version for e in store.read_stream("s")) == 5
    store.truncate_before("s", 6)
    assert next(e.version for e in store.read_stream("s")) == 6
    store.append("s", "S", make(1), expected_version=10)  # a truncated stream stays open
    assert store.stream_version("s") == 11


def test_a_unit_of_work_rolled_back_leaves_the_stream_open(backend: Backend) -> None:
    """A tombstone in a unit of work that fails is undone with it."""

    def sync(store: Any) -> None:
        with pytest.raises(BoomError), store.transaction():
            store.tombstone("s", expected_version=2)
            raise BoomError

    async def async_(store: Any) -> None:
        with pytest.raises(BoomError):
            async with store.transaction():
                await store.tombstone("s", expected_version=2)
                raise BoomError

    backend.store.append("s", "S", make(2), expected_version=0)
    run(backend, sync, async_)
    assert [e.version for e in backend.store.read_stream("s")] == [1, 2]
    backend.store.append("s", "S", make(1), expected_version=2)


# The repository: closing aggregates, loading closed and truncated ones.


def _wallet(backend: Backend, wallet_id: str = "w", deposits: int = 3) -> Wallet:
    wallets = backend.repository(Wallet)
    wallet = Wallet.open(wallet_id, "Ada")
    for amount in range(1, deposits + 1):
        wallet.add(Decimal(amount))
    wallets.save(wallet)
    return wallet


def test_repository_tombstone_closes_the_aggregate(backend: Backend) -> None:
    """After tombstone(), loads and saves raise StreamClosedError; the state before the
    tombstone still loads with at_version, and the history still reads."""
    wallets = backend.repository(Wallet)
    wallet = _wallet(backend)
    closed = wallets.tombstone(wallet, metadata=Metadata(extra={"reason": "closed by owner"}))
    assert closed.version == 5
    with pytest.raises(StreamClosedError) as caught:
        wallets.load("w")
    assert (caught.value.stream_id, caught.value.version) == ("w", 5)
    final = wallets.load("w", at_version=caught.value.version - 1)
    assert (final.balance, aggregate_version(final)) == (Decimal(6), 4)
    final.add(Decimal(1))
    with pytest.raises(StreamClosedError):
        wallets.save(final)
    history = list(wallets.history("w", include_archived=True))
    assert [type(e.event).__name__ for e in history][-1] == "StreamClosed"
    assert history[-1].metadata.extra == {"reason": "closed by owner"}
    (only,) = wallets.history("w")
    assert isinstance(only.event, StreamClosed)


def test_repository_tombstone_saves_pending_events_with_it(backend: Backend) -> None:
    """Pending events and the tombstone commit together, at the version loaded."""
    wallets = backend.repository(Wallet)
    wallet = _wallet(backend, deposits=1)
    wallet.add(Decimal(10), note="last one")
    assert wallets.tombstone(wallet).version == 4
    assert wallets.load("w", at_version=3).balance == Decimal(11)


def test_repository_tombstone_of_a_stale_aggregate_writes_nothing(backend: Backend) -> None:
    """A tombstone racing a save that won loses with ConcurrencyError, its pending events
    unwritten; the stream stays open."""
    wallets = backend.repository(Wallet)
    _wallet(backend, deposits=1)
    first, second = wallets.load("w"), wallets.load("w")
    first.add(Decimal(1))
    wallets.save(first)
    second.add(Decimal(5))
    with pytest.raises(ConcurrencyError):
        wallets.tombstone(second)
    assert wallets.load("w").balance == Decimal(2)


def test_load_uses_the_snapshot_of_a_truncated_stream(backend: Backend) -> None:
    """A truncated stream loads from its snapshot and the events after it, as before."""
    wallets = backend.repository(SnapshottedWallet)
    wallet = SnapshottedWallet.open("w", "Ada")
    for amount in range(1, 8):
        wallet.add(Decimal(amount))
    wallets.save(wallet)  # version 8, snapshot at 8 (every 5)
    wallet.add(Decimal(100))
    wallets.save(wallet)
    backend.store.truncate_before("w", 8)
    counting = backend.counting()
    loaded = backend.repository(SnapshottedWallet, store=counting).load("w")
    assert (loaded.balance, aggregate_version(loaded)) == (Decimal(128), 9)
    assert counting.read == 1


def test_load_without_a_usable_snapshot_reads_the_truncated_part_too(backend: Backend) -> None:
    """Loading before the snapshot, or past a snapshot of another state schema, reads the
    events before the truncation point too (archived or not): the state is the same."""
    wallets = backend.repository(Wallet)
    _wallet(backend, deposits=6)  # versions 1..7, balance 21
    wallets.take_snapshot(wallets.load("w"))
    backend.store.truncate_before("w", 6)
    assert wallets.load("w", at_version=3).balance == Decimal(3)
    assert wallets.load("w", at_version=6).balance == Decimal(15)
    assert wallets.load("w").balance == Decimal(21)
    backend.store.save_snapshot(  # a newer snapshot no load can use (another state schema)
        SnapshotRecord(
            stream_id="w", stream_type="TestWallet", state_schema="old", version=7, data="{}"
        )
    )
    assert wallets.load("w").balance == Decimal(21)


def test_idempotent_retry_of_a_tombstone_event_id_from_another_stream_conflicts(
    store: EventStore,
) -> None:
    """A tombstone's id names its stream: the same event under another stream conflicts."""
    store.append("a", "S", make(1), expected_version=0)
    store.tombstone("a", expected_version=1)
    (tombstone,) = [e for e in store.read_all() if e.event_type == CLOSED_EVENT_TYPE]
    copy = NewEvent(tombstone.event_id, CLOSED_EVENT_TYPE, 1, "{}")
    with pytest.raises(IdempotencyConflictError):
        store.append("b", "S", [copy], expected_version=0)


def test_a_truncation_between_two_pages_of_a_load_leaves_its_state_right(
    backend: Backend,
) -> None:
    """A load that reads its stream page by page may see the stream truncated between two
    pages (by another process: here, between the pages of this very read). The second page
    then skips ahead, and the load reads the rest, the archived events too, after the
    events it applied, each once."""
    page = {"sqlite": DEFAULT_PAGE_SIZE, "postgres": STREAM_PAGE_SIZE}.get(
        backend.name.removesuffix("-async"), 10
    )
    wallet = Wallet.open("w", "Ada")
    for _ in range(page + 9):
        wallet.add(Decimal(1))
    backend.repository(Wallet).save(wallet)  # versions 1 to page + 10, balance page + 9
    backend.store.save_snapshot(  # one no load of Wallet uses (another state schema)
        SnapshotRecord(
            stream_id="w",
            stream_type="TestWallet",
            state_schema="old",
            version=page + 5,
            data="{}",
        )
    )
    store = _TruncatingAfter(backend.raw, page, page + 5, asynchronous=backend.loop is not None)
    assert backend.repository(Wallet, store=store).load("w").balance == Decimal(page + 9)
    assert store.truncated
    assert backend.repository(Wallet).load("w").balance == Decimal(page + 9)


def test_a_stream_read_overtaken_by_a_truncation_has_no_gap(backend: Backend) -> None:
    """A stream read page by page goes on after its last event, even when the stream was
    truncated (and archived) past it since the first page: no event is skipped."""
    page = {"sqlite": DEFAULT_PAGE_SIZE, "postgres": STREAM_PAGE_SIZE}.get(
        backend.name.removesuffix("-async"), 10
    )
    raw = backend.raw
    raw_sync = raw if backend.loop is None else getattr(raw, "sync", None)
    if raw_sync is None:  # the async PostgreSQL store: read through the same code, generated
        raw_sync = backend.store
    for read in ("read_stream", "read_payloads"):
        raw_sync.append(read, "S", make(page + 10), expected_version=0)
        _snapshot(raw_sync, read, page + 5)
        versions = []
        for record in getattr(raw_sync, read)(read):
            versions.append(record.version)
            if record.version == page:
                raw_sync.truncate_before(read, page + 5)
                if hasattr(raw_sync, "archive"):
                    raw_sync.archive(max_events=page + 10)
        assert versions == list(range(1, page + 11)), read


@attrs.define
class _TruncatingAfter:
    """A store that truncates a stream before `before` once a read has yielded `after`."""

    inner: Any
    after: int
    before: int
    asynchronous: bool
    truncated: bool = False

    def read_payloads(self, stream_id: str, **options: Any) -> Any:
        if self.asynchronous:
            return self._async_read(stream_id, **options)
        return self._read(stream_id, **options)

    def _read(self, stream_id: str, **options: Any) -> Iterator[EventPayload]:
        for payload in self.inner.read_payloads(stream_id, **options):
            yield payload
            if payload.version == self.after and not self.truncated:
                self.inner.truncate_before(stream_id, self.before)
                self.truncated = True

    async def _async_read(self, stream_id: str, **options: Any) -> AsyncIterator[EventPayload]:
        async for payload in self.inner.read_payloads(stream_id, **options):
            yield payload
            if payload.version == self.after and not self.truncated:
                await self.inner.truncate_before(stream_id, self.before)
                self.truncated = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
