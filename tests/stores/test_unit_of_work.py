"""Units of work (`store.transaction()`): appends to several streams commit together or not
at all, on every backend, sync and async."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import pytest

from esframework import AsyncRepository, ConcurrencyError, Repository
from tests.conftest import Backend
from tests.domain import SnapshottedWallet, Wallet
from tests.stores.test_contract import make


class BoomError(Exception):
    pass


def run(
    backend: Backend,
    sync: Callable[[Any], None],
    async_: Callable[[Any], Coroutine[Any, Any, None]],
) -> None:
    """Run the sync body on a sync store, the async one (in one task) on an async store."""
    if backend.loop is None:
        sync(backend.raw)
    else:
        backend.loop.run(async_(backend.raw))


def test_appends_in_a_unit_commit_together(backend: Backend) -> None:
    def sync(store: Any) -> None:
        with store.transaction():
            store.append("a", "S", make(2), expected_version=0)
            store.append("b", "S", make(1), expected_version=0)
            assert store.stream_version("a") == 2  # a unit reads its own writes

    async def async_(store: Any) -> None:
        async with store.transaction():
            await store.append("a", "S", make(2), expected_version=0)
            await store.append("b", "S", make(1), expected_version=0)
            assert await store.stream_version("a") == 2

    run(backend, sync, async_)
    events = backend.store.read_all()
    assert [(e.stream_id, e.version) for e in events] == [("a", 1), ("a", 2), ("b", 1)]
    assert [e.position for e in events] == sorted({e.position for e in events})


def test_a_unit_that_raises_writes_nothing(backend: Backend) -> None:
    def sync(store: Any) -> None:
        with pytest.raises(BoomError), store.transaction():
            store.append("a", "S", make(2), expected_version=0)
            store.append("b", "S", make(1), expected_version=0)
            raise BoomError

    async def async_(store: Any) -> None:
        with pytest.raises(BoomError):
            async with store.transaction():
                await store.append("a", "S", make(2), expected_version=0)
                await store.append("b", "S", make(1), expected_version=0)
                raise BoomError

    run(backend, sync, async_)
    assert backend.store.stream_version("a") == backend.store.stream_version("b") == 0
    assert backend.store.read_all() == []
    backend.store.append("a", "S", make(1), expected_version=0)  # the store is usable again
    assert backend.store.stream_version("a") == 1


def test_a_conflict_in_a_unit_undoes_its_earlier_appends(backend: Backend) -> None:
    backend.store.append("b", "S", make(1), expected_version=0)

    def sync(store: Any) -> None:
        with pytest.raises(ConcurrencyError), store.transaction():
            store.append("a", "S", make(1), expected_version=0)
            store.append("b", "S", make(1), expected_version=0)  # b is at 1 already

    async def async_(store: Any) -> None:
        with pytest.raises(ConcurrencyError):
            async with store.transaction():
                await store.append("a", "S", make(1), expected_version=0)
                await store.append("b", "S", make(1), expected_version=0)

    run(backend, sync, async_)
    assert backend.store.stream_version("a") == 0
    assert backend.store.stream_version("b") == 1


def test_retried_appends_and_nested_units_inside_a_unit(backend: Backend) -> None:
    """A retried append inside a unit is a no-op that keeps the unit usable, and a unit
    opened inside another joins it."""
    events = make(2)

    def sync(store: Any) -> None:
        with store.transaction():
            store.append("a", "S", events, expected_version=0)
            again = store.append("a", "S", events, expected_version=0)
            assert again.version == 2
            with store.transaction():
                store.append("b", "S", make(1), expected_version=0)
            with pytest.raises(ConcurrencyError):
                store.append("a", "S", make(1), expected_version=0)
            store.append("a", "S", make(1), expected_version=2)  # still usable after both

    async def async_(store: Any) -> None:
        async with store.transaction():
            await store.append("a", "S", events, expected_version=0)
            again = await store.append("a", "S", events, expected_version=0)
            assert again.version == 2
            async with store.transaction():
                await store.append("b", "S", make(1), expected_version=0)
            with pytest.raises(ConcurrencyError):
                await store.append("a", "S", make(1), expected_version=0)
            await store.append("a", "S", make(1), expected_version=2)

    run(backend, sync, async_)
    assert [(e.stream_id, e.version) for e in backend.store.read_all()] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("a", 3),
    ]


def test_repository_saves_several_aggregates_atomically(backend: Backend) -> None:
    ann, bob = Wallet.open("ann", "Ann"), Wallet.open("bob", "Bob")
    stale = Wallet.open("bob", "Bob again")  # will conflict with bob

    def sync(store: Any) -> None:
        wallets = Repository(Wallet, store=store)
        wallets.save_all([ann, bob])
        late = Wallet.open("cid", "Cid")
        with pytest.raises(ConcurrencyError):
            wallets.save_all([late, stale])

    async def async_(store: Any) -> None:
        wallets = AsyncRepository(Wallet, store=store)
        await wallets.save_all([ann, bob])
        late = Wallet.open("cid", "Cid")
        with pytest.raises(ConcurrencyError):
            await wallets.save_all([late, stale])

    run(backend, sync, async_)
    assert [e.stream_id for e in backend.store.read_all()] == ["ann", "bob"]
    assert backend.store.stream_version("cid") == 0


def test_snapshots_taken_in_a_unit_roll_back_with_it(backend: Backend) -> None:
    """A snapshot of a version that never committed must not be loaded later."""
    wallet = SnapshottedWallet.open("w", "Ann")
    for _ in range(5):
        wallet.add(Decimal(1))

    def sync(store: Any) -> None:
        with pytest.raises(BoomError), store.transaction():
            Repository(SnapshottedWallet, store=store).save(wallet, snapshot=True)
            raise BoomError

    async def async_(store: Any) -> None:
        with pytest.raises(BoomError):
            async with store.transaction():
                await AsyncRepository(SnapshottedWallet, store=store).save(wallet, snapshot=True)
                raise BoomError

    run(backend, sync, async_)
    assert backend.store.load_snapshot("w") is None
