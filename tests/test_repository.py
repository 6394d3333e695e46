"""The repository loads from snapshots plus later events and saves with optimistic concurrency."""

from __future__ import annotations

import pickle
import uuid
from decimal import Decimal
from typing import Any

import pytest

from esframework import (
    AggregateNotFoundError,
    ConcurrencyError,
    EventStore,
    InMemoryEventStore,
    Metadata,
    Repository,
    SaveResult,
    SnapshotPolicy,
    SnapshotRecord,
    aggregate,
    aggregate_version,
    applies,
    emit,
    event,
    new,
    pending_events,
)
from esframework.errors import (
    EventEncodingError,
    InvalidVersionError,
    StoreError,
    StreamTypeMismatchError,
    VersionNotFoundError,
)
from tests.conftest import Backend
from tests.domain import MoneyAdded, SnapshottedWallet, Wallet, WalletOpened


def test_save_then_load_round_trips(backend: Backend) -> None:
    """A saved aggregate loads back with the same state and version."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w-1", "Ada")
    wallet.add(Decimal("1.25"))
    result = wallets.save(wallet)
    assert result is not None
    assert result.version == 2
    assert pending_events(wallet) == ()
    loaded = wallets.load("w-1")
    assert loaded == wallet
    assert aggregate_version(loaded) == 2


def test_load_of_missing_stream_raises_not_found(backend: Backend) -> None:
    """Loading a stream with no events raises AggregateNotFoundError, a LookupError."""
    with pytest.raises(AggregateNotFoundError, match="'nobody'") as caught:
        backend.repository(Wallet).load("nobody")
    assert isinstance(caught.value, LookupError)


def test_load_at_version_returns_past_state(backend: Backend) -> None:
    """load(at_version=n) returns the state as of version n."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    for amount in (1, 2, 3):
        wallet.add(Decimal(amount))
    wallets.save(wallet)
    past = wallets.load("w", at_version=3)
    assert past.balance == Decimal(3)
    assert aggregate_version(past) == 3
    head = wallets.load("w", at_version=4)
    assert (head.balance, aggregate_version(head)) == (Decimal(6), 4)


@pytest.mark.parametrize("snapshot", [False, True])
def test_load_beyond_head_raises_version_not_found(backend: Backend, snapshot: bool) -> None:
    """at_version past the stream's head raises VersionNotFoundError naming both versions."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    for amount in (1, 2, 3):
        wallet.add(Decimal(amount))
    wallets.save(wallet, snapshot=snapshot)  # from a snapshot at the head, nothing is read
    for asked in (5, 9):
        with pytest.raises(VersionNotFoundError) as caught:
            wallets.load("w", at_version=asked)
        error = caught.value
        assert (error.stream_id, error.version, error.head) == ("w", asked, 4)
        assert error.aggregate_type == "TestWallet"
        assert str(error) == f"TestWallet 'w' has no version {asked}: its stream is at version 4"
        # Still an AggregateNotFoundError (and a LookupError), so existing handlers catch it.
        assert isinstance(error, AggregateNotFoundError)
        assert isinstance(error, LookupError)
        # Errors cross process boundaries; these bytes are the ones just pickled.
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301
        assert (type(copy), str(copy), copy.head) == (VersionNotFoundError, str(error), 4)


def test_load_at_version_of_missing_stream_raises_not_found(backend: Backend) -> None:
    """at_version on a stream with no events raises AggregateNotFoundError, not the subclass."""
    with pytest.raises(AggregateNotFoundError) as caught:
        backend.repository(Wallet).load("nobody", at_version=3)
    error = caught.value
    assert type(error) is AggregateNotFoundError
    assert (error.stream_id, error.version) == ("nobody", 3)
    assert str(error) == (
        "TestWallet 'nobody' not found: the stream has no events (asked for version 3)"
    )


@pytest.mark.parametrize("asked", [0, -1, -5])
def test_load_at_version_below_one_raises_invalid_version(backend: Backend, asked: int) -> None:
    """at_version below 1 is refused before any read, on a stored stream and a missing one."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(1))
    wallets.save(wallet)
    for stream_id in ("w", "nobody"):
        with pytest.raises(InvalidVersionError) as caught:
            wallets.load(stream_id, at_version=asked)
        assert (caught.value.stream_id, caught.value.version) == (stream_id, asked)
        assert isinstance(caught.value, ValueError)
        assert not isinstance(caught.value, AggregateNotFoundError)
        assert f"invalid version {asked} for stream {stream_id!r}" in str(caught.value)


def test_stale_save_raises_and_writes_nothing(backend: Backend, store: EventStore) -> None:
    """Two copies loaded at the same version: the second save fails, writing nothing."""
    wallets = backend.repository(Wallet)
    wallets.save(Wallet.open("w", "Ada"))
    first, second = wallets.load("w"), wallets.load("w")
    first.add(Decimal(1))
    wallets.save(first)
    second.add(Decimal(100))
    second.add(Decimal(100))
    with pytest.raises(ConcurrencyError) as caught:
        wallets.save(second)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("w", 1, 2)
    assert wallets.load("w").balance == Decimal(1)
    assert store.stream_version("w") == 2


def test_new_aggregate_on_existing_stream_is_a_conflict(backend: Backend) -> None:
    """A new aggregate saves only if its stream does not exist yet."""
    wallets = backend.repository(Wallet)
    wallets.save(Wallet.open("w", "Ada"))
    with pytest.raises(ConcurrencyError):
        wallets.save(Wallet.open("w", "Eve"))
    assert wallets.load("w").owner == "Ada"


def test_saving_nothing_is_a_no_op(backend: Backend, store: EventStore) -> None:
    """Saving an aggregate with no pending events writes nothing."""
    wallets = backend.repository(Wallet)
    wallets.save(Wallet.open("w", "Ada"))
    loaded = wallets.load("w")
    assert wallets.save(loaded) is None
    assert store.head() == 1


def test_metadata_is_saved_with_events(backend: Backend) -> None:
    """Metadata given to save is stored with each pending event."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(1))
    correlation = uuid.uuid4()
    wallets.save(wallet, metadata=Metadata(correlation_id=correlation, extra={"user": "ada"}))
    history = list(wallets.history("w"))
    assert [h.event for h in history] == [
        WalletOpened(owner="Ada"),
        MoneyAdded(amount=Decimal(1), note=""),
    ]
    assert {h.metadata.correlation_id for h in history} == {correlation}
    assert history[0].metadata.extra == {"user": "ada"}


def test_snapshot_policy_makes_loads_read_only_later_events(
    backend: Backend, store: EventStore
) -> None:
    """With a snapshot every 5 events, a load reads the snapshot and only the events after it."""
    counting = backend.counting()
    wallets = backend.repository(SnapshottedWallet, store=counting)
    wallet = SnapshottedWallet.open("w", "Ada")
    for _ in range(6):
        wallet.add(Decimal(1))
    wallets.save(wallet)  # versions 1..7: crosses 5, so a snapshot at 7
    snapshot = store.load_snapshot("w")
    assert snapshot is not None
    assert snapshot.version == 7
    loaded = wallets.load("w")
    loaded.add(Decimal(1))
    wallets.save(loaded)  # version 8: no new snapshot
    counting.read = 0
    again = wallets.load("w")
    assert again.balance == Decimal(7)
    assert aggregate_version(again) == 8
    assert counting.read == 1  # only version 8


def test_snapshot_on_demand(backend: Backend) -> None:
    """save(snapshot=True) and take_snapshot store the state whatever the policy."""
    counting = backend.counting()
    wallets = backend.repository(Wallet, store=counting)
    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(4))
    wallets.save(wallet, snapshot=True)
    counting.read = 0
    assert wallets.load("w").balance == Decimal(4)
    assert counting.read == 0
    wallet.add(Decimal(1))
    with pytest.raises(ValueError, match="save the aggregate"):
        wallets.take_snapshot(wallet)


def test_load_at_version_before_snapshot_replays(backend: Backend) -> None:
    """A snapshot newer than the version asked for is not used."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(4))
    wallet.add(Decimal(5))
    wallets.save(wallet, snapshot=True)
    assert wallets.load("w", at_version=2).balance == Decimal(4)


def test_snapshot_of_another_shape_is_ignored(backend: Backend) -> None:
    """After the aggregate's fields change, old snapshots are ignored: a full replay."""

    @aggregate(stream_type="TestWallet")
    class ReshapedWallet:
        owner: str = ""
        balance: Decimal = Decimal(0)
        deposits: int = 0  # a new field: old snapshots lack it

        @applies(WalletOpened)
        def _on_opened(self, e: WalletOpened) -> None:
            self.owner = e.owner

        @applies(MoneyAdded)
        def _on_added(self, e: MoneyAdded) -> None:
            self.balance += e.amount
            self.deposits += 1

    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(1))
    wallet.add(Decimal(2))
    backend.repository(Wallet).save(wallet, snapshot=True)
    counting = backend.counting()
    loaded = backend.repository(ReshapedWallet, store=counting).load("w")
    assert (loaded.balance, loaded.deposits) == (Decimal(3), 2)
    assert counting.read == 3


def test_unreadable_snapshot_falls_back_to_replay(backend: Backend, store: EventStore) -> None:
    """A snapshot that does not decode is a cache miss, not a failure."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "Ada")
    wallet.add(Decimal(2))
    wallets.save(wallet, snapshot=True)
    good = store.load_snapshot("w")
    assert good is not None
    store.save_snapshot(
        SnapshotRecord(
            stream_id="w",
            stream_type=good.stream_type,
            state_schema=good.state_schema,
            version=good.version + 1,
            data='{"balance": "not a number"}',
        )
    )
    assert wallets.load("w").balance == Decimal(2)


def test_failed_policy_snapshot_does_not_fail_the_save() -> None:
    """Events are committed before the policy's snapshot; a snapshot failure only logs."""

    class FailingSnapshots(InMemoryEventStore):
        def save_snapshot(self, snapshot: SnapshotRecord) -> None:  # noqa: ARG002
            from esframework.errors import StoreError

            raise StoreError("disk full")

    store = FailingSnapshots()
    wallets = Repository(SnapshottedWallet, store=store)
    wallet = SnapshottedWallet.open("w", "Ada")
    for _ in range(5):
        wallet.add(Decimal(1))
    assert wallets.save(wallet) is not None
    assert wallets.load("w").balance == Decimal(5)


def test_payloads_that_look_like_markers_round_trip_through_the_store(backend: Backend) -> None:
    """Stored and read back by every backend, a dict shaped like a serializer's marker stays
    that dict: events decode by their declared types."""

    @event(name="TestCarried")
    class Carried:
        payload: dict[str, Any]
        amount: Decimal

    @aggregate(stream_type="TestCarrier")
    class Carrier:
        payloads: tuple[dict[str, Any], ...] = ()

        @applies(Carried)
        def _on_carried(self, e: Carried) -> None:
            self.payloads = (*self.payloads, e.payload)

    marker = {"_type_": "decimal", "_data_": "1.5", "$date": 12, "__class__": "datetime"}
    carrier = new(Carrier, "c")
    emit(carrier, Carried(payload=marker, amount=Decimal("1.50")))
    repository = backend.repository(Carrier)
    repository.save(carrier)
    assert repository.load("c").payloads == (marker,)


def test_policy_snapshot_that_cannot_be_encoded_does_not_fail_the_save() -> None:
    """A state that cannot be snapshotted (NaN) leaves the committed save successful."""

    @event(name="TestMeasured")
    class Measured:
        value: float

    @aggregate(stream_type="TestGauge", snapshots=SnapshotPolicy(every=1))
    class Gauge:
        value: float = 0.0

        @applies(Measured)
        def _on_measured(self, e: Measured) -> None:
            self.value = e.value * float("inf")  # a handler bug: NaN or infinite state

    store = InMemoryEventStore()
    gauge = new(Gauge, "g")
    emit(gauge, Measured(value=1.0))
    assert Repository(Gauge, store=store).save(gauge) is not None
    assert store.stream_version("g") == 1
    assert store.load_snapshot("g") is None


@event(name="TestTicketRaised")
class TicketRaised:
    title: str


@aggregate(stream_type="TestTicket")
class Ticket:
    title: str = ""

    @applies(TicketRaised)
    def _on_raised(self, e: TicketRaised) -> None:
        self.title = e.title


def test_loading_a_stream_of_another_type_names_both_types(backend: Backend) -> None:
    """A repository refuses a stream of another aggregate type, for load and history."""
    backend.repository(Wallet).save(Wallet.open("doc-1", "Ada"))
    tickets = backend.repository(Ticket)
    with pytest.raises(StreamTypeMismatchError) as caught:
        tickets.load("doc-1")
    error = caught.value
    assert (error.stream_id, error.expected, error.actual) == ("doc-1", "TestTicket", "TestWallet")
    with pytest.raises(StreamTypeMismatchError):
        tickets.load("doc-1", at_version=1)
    with pytest.raises(StreamTypeMismatchError):
        list(tickets.history("doc-1"))


def test_a_snapshot_of_another_type_is_refused(backend: Backend, store: EventStore) -> None:
    """A snapshot of another aggregate type under the id is refused, even with no events."""
    store.save_snapshot(
        SnapshotRecord(
            stream_id="doc-2", stream_type="TestWallet", state_schema="x", version=3, data="{}"
        )
    )
    with pytest.raises(StreamTypeMismatchError) as caught:
        backend.repository(Ticket).load("doc-2")
    assert caught.value.actual == "TestWallet"


def test_a_new_aggregate_under_an_id_of_another_type_is_refused(
    backend: Backend, store: EventStore
) -> None:
    """Saving a new aggregate whose id another type holds says so (not a concurrency conflict)."""
    backend.repository(Wallet).save(Wallet.open("doc-3", "Ada"))
    ticket = new(Ticket, "doc-3")
    emit(ticket, TicketRaised(title="printer on fire"))
    with pytest.raises(StreamTypeMismatchError):
        backend.repository(Ticket).save(ticket)
    assert store.stream_version("doc-3") == 1


@event(name="TestReading")
class Reading:
    value: float


@aggregate(stream_type="TestMeter")
class Meter:
    value: float = 0.0

    @applies(Reading)
    def _on_reading(self, e: Reading) -> None:
        self.value = e.value * float("inf")  # a handler bug: a state that cannot be encoded


def test_save_with_snapshot_never_raises_after_the_commit(
    backend: Backend, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    """save(snapshot=True) whose snapshot fails reports it on the result and logs it; the
    events are committed, so a caller does not retry the command."""
    meter = new(Meter, "m")
    emit(meter, Reading(value=1.0))
    meters = backend.repository(Meter)
    with caplog.at_level("WARNING", logger="esframework"):
        result = meters.save(meter, snapshot=True)
    assert isinstance(result, SaveResult)
    assert isinstance(result.snapshot_error, EventEncodingError)
    assert (result.stream_id, result.version) == ("m", 1)
    assert result.positions in {(), tuple(e.position for e in store.read_all())}
    assert "could not snapshot m at version 1" in caplog.text
    assert pending_events(meter) == ()
    assert store.load_snapshot("m") is None
    # With nothing pending nothing is committed, so the snapshot's own failure raises.
    with pytest.raises(EventEncodingError):
        meters.save(meter, snapshot=True)


def test_a_snapshot_the_store_refuses_is_reported_on_the_result() -> None:
    """A store failing to write the snapshot (by policy or on demand) leaves the save done."""

    class FailingSnapshots(InMemoryEventStore):
        def save_snapshot(self, snapshot: SnapshotRecord) -> None:  # noqa: ARG002
            raise StoreError("disk full")

    store = FailingSnapshots()
    wallets = Repository(SnapshottedWallet, store=store)
    wallet = SnapshottedWallet.open("w", "Ada")
    result = wallets.save(wallet, snapshot=True)
    assert result is not None
    assert isinstance(result.snapshot_error, StoreError)
    for _ in range(5):
        wallet.add(Decimal(1))
    result = wallets.save(wallet)  # crosses the policy's 5
    assert result is not None
    assert isinstance(result.snapshot_error, StoreError)
    wallet.add(Decimal(1))
    result = wallets.save(wallet)
    assert result is not None
    assert result.snapshot_error is None  # no snapshot was due
    assert wallets.load("w").balance == Decimal(6)
