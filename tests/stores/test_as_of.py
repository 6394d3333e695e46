"""Reading as of a time: a stream, an aggregate and the global order as they stood."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from esframework import AggregateNotFoundError, EventStore, ExpectedVersion
from esframework.errors import InvalidTimeError
from tests.conftest import Backend
from tests.domain import SnapshottedWallet, Wallet
from tests.stores.test_contract import make

TICK = timedelta(microseconds=1)


def _append_apart(store: EventStore, stream_id: str, count: int) -> list[datetime]:
    """Append `count` events one by one, a few milliseconds apart; return their times."""
    for version in range(count):
        store.append(stream_id, "S", make(1), expected_version=version)
        time.sleep(0.005)  # so that each event is recorded at a later clock reading
    return [e.recorded_at for e in store.read_stream(stream_id)]


def test_version_at_is_the_stream_as_it_stood(store: EventStore) -> None:
    """version_at counts the events recorded at or before the time."""
    times = _append_apart(store, "s", 3)
    assert times == sorted(times)
    assert store.version_at("s", times[0] - TICK) == 0
    assert [store.version_at("s", t) for t in times] == [1, 2, 3]
    assert store.version_at("s", times[1] + (times[2] - times[1]) / 2) == 2
    assert store.version_at("s", datetime.now(UTC) + timedelta(days=1)) == 3
    assert store.version_at("never-written", times[2]) == 0


def test_as_of_in_another_time_zone_means_the_same_instant(store: EventStore) -> None:
    """An aware time in any zone reads the same as that instant in UTC."""
    times = _append_apart(store, "s", 2)
    elsewhere = times[0].astimezone(timezone(timedelta(hours=-7, minutes=-30)))
    assert store.version_at("s", elsewhere) == 1
    assert store.position_at(elsewhere) == store.position_at(times[0])


def test_a_naive_time_is_refused(store: EventStore) -> None:
    """A time without a zone is ambiguous: InvalidTimeError, a ValueError, names it."""
    naive = datetime(2026, 3, 1, 12, 0)  # noqa: DTZ001 - the bad input under test
    with pytest.raises(InvalidTimeError, match="2026-03-01 12:00:00") as raised:
        store.version_at("s", naive)
    assert isinstance(raised.value, ValueError)
    assert raised.value.as_of == naive
    with pytest.raises(InvalidTimeError):
        store.position_at(naive)


def test_position_at_and_iter_all_as_of(store: EventStore) -> None:
    """The global order as of a time is the events recorded by then, in order."""
    for i in range(4):
        store.append(f"s-{i}", "S", make(1), expected_version=ExpectedVersion.NO_STREAM)
        time.sleep(0.005)
    events = list(store.iter_all())
    assert store.position_at(events[0].recorded_at - TICK) == 0
    for count, e in enumerate(events, start=1):
        assert store.position_at(e.recorded_at) == e.position
        seen = list(store.iter_all(as_of=e.recorded_at, page_size=1))
        assert seen == events[:count]
    assert list(store.iter_all(as_of=events[0].recorded_at - TICK)) == []


def test_load_as_of_returns_the_state_at_that_time(backend: Backend) -> None:
    """load(as_of=t) is the state after the events recorded at or before t."""
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w", "ada")
    wallets.save(wallet)
    for amount in (1, 2, 3):
        time.sleep(0.005)
        wallet = wallets.load("w")
        wallet.add(Decimal(amount))
        wallets.save(wallet)
    times = [e.recorded_at for e in backend.store.read_stream("w")]
    balances = [wallets.load("w", as_of=t).balance for t in times]
    assert balances == [Decimal(0), Decimal(1), Decimal(3), Decimal(6)]
    with pytest.raises(AggregateNotFoundError):
        wallets.load("w", as_of=times[0] - TICK)
    with pytest.raises(ValueError, match="not both"):
        wallets.load("w", as_of=times[0], at_version=1)


def test_load_as_of_ignores_a_later_snapshot(backend: Backend) -> None:
    """A snapshot taken after the time is not used for the state at that time."""
    wallets = backend.repository(SnapshottedWallet)
    wallet = SnapshottedWallet.open("w", "ada")
    wallets.save(wallet)
    time.sleep(0.005)
    for _ in range(6):  # the policy snapshots every 5 events
        wallet.add(Decimal(1))
    wallets.save(wallet)
    assert backend.store.load_snapshot("w") is not None
    opened_at = next(iter(backend.store.read_stream("w"))).recorded_at
    past = wallets.load("w", as_of=opened_at)
    assert (past.owner, past.balance) == ("ada", Decimal(0))
