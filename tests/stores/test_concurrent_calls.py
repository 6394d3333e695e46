"""Store calls beside an open transaction: tasks a handler starts join its transaction, and
other tasks' and threads' reads see the last committed state instead of waiting for its end."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from decimal import Decimal
from typing import Any

import pytest

from esframework import (
    AsyncRepository,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    Subscription,
    SubscriptionWorker,
)
from tests.conftest import Backend
from tests.domain import Wallet
from tests.stores.test_contract import make

GUARD = 20.0  # seconds: only a guard against hanging; the calls below return at once


def open_wallets(backend: Backend, *ids: str) -> None:
    repository = Repository(Wallet, store=backend.store)
    for wallet_id in ids:
        repository.save(Wallet.open(wallet_id, owner=wallet_id))


@pytest.mark.parametrize(
    "backend", ["memory-async", "sqlite-async", "postgres-async"], indirect=True
)
def test_tasks_started_inside_a_unit_of_work_join_it(backend: Backend) -> None:
    open_wallets(backend, "a", "b")
    store = backend.raw

    async def body() -> None:
        repository = AsyncRepository(Wallet, store=store)
        async with store.transaction():
            await store.append("c", "S", make(1), expected_version=0)
            a, b, c = await asyncio.gather(
                repository.load("a"), repository.load("b"), store.stream_version("c")
            )
            assert (a.owner, b.owner, c) == ("a", "b", 1)  # they see the unit's own write

    backend.loop.run(asyncio.wait_for(body(), GUARD))  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["sqlite-async", "postgres-async"], indirect=True)
def test_a_handler_awaits_store_calls_from_child_tasks(backend: Backend) -> None:
    open_wallets(backend, "a", "b")
    store = backend.raw
    repository = AsyncRepository(Wallet, store=store)
    owners: list[tuple[str, str]] = []

    async def handler(envelope: Envelope[Any], _: object) -> None:
        if envelope.stream_id != "a" or envelope.version != 1:
            return
        a, b = await asyncio.gather(repository.load("a"), repository.load("b"))
        owners.append((a.owner, b.owner))
        # A command from a child task joins the batch, and commits with its checkpoint.
        wallet = await repository.load("b")
        wallet.add(Decimal(5))
        await asyncio.gather(repository.save(wallet))

    worker = AsyncSubscriptionWorker(store, AsyncSubscription(name="gathers", handler=handler))
    backend.loop.run(asyncio.wait_for(worker.run(until_caught_up=True), GUARD))  # type: ignore[union-attr]
    assert owners == [("a", "b")]
    assert Repository(Wallet, store=backend.store).load("b").balance == Decimal(5)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_other_threads_read_while_a_batch_is_open(backend: Backend) -> None:
    open_wallets(backend, "a")
    store = backend.raw
    inside, read = threading.Event(), threading.Event()
    seen: list[object] = []

    def handler(_: Envelope[Any], __: object) -> None:
        inside.set()
        # The batch stays open until another thread's reads returned: they must not wait.
        seen.append(read.wait(GUARD))

    worker = SubscriptionWorker(store, Subscription(name="slow", handler=handler))
    thread = threading.Thread(target=worker.run, kwargs={"until_caught_up": True})
    thread.start()
    try:
        assert inside.wait(GUARD)
        wallet = Repository(Wallet, store=store).load("a")
        # Committed state only: the batch's checkpoint move is not visible yet.
        checkpoint, head = store.load_checkpoint("slow"), store.head()
        events = store.read_all()
        read.set()
    finally:
        read.set()
        thread.join(GUARD)
    assert seen == [True]
    assert (wallet.owner, checkpoint, head, len(events)) == ("a", 0, 1, 1)
    assert store.load_checkpoint("slow") == 1


@pytest.mark.parametrize("backend", ["sqlite-async", "postgres-async"], indirect=True)
def test_other_tasks_read_while_a_batch_is_open(backend: Backend) -> None:
    open_wallets(backend, "a")
    store = backend.raw
    seen: list[bool] = []

    async def body() -> tuple[Any, ...]:
        inside, read = asyncio.Event(), asyncio.Event()

        async def handler(_: Envelope[Any], __: object) -> None:
            inside.set()
            try:
                await asyncio.wait_for(read.wait(), GUARD)
                seen.append(True)
            except TimeoutError:
                seen.append(False)

        worker = AsyncSubscriptionWorker(store, AsyncSubscription(name="slow", handler=handler))
        running = asyncio.ensure_future(worker.run(until_caught_up=True))
        try:
            await asyncio.wait_for(inside.wait(), GUARD)
            wallet = await AsyncRepository(Wallet, store=store).load("a")
            results = (
                wallet.owner,
                await store.load_checkpoint("slow"),
                await store.head(),
                len(await store.read_all()),
            )
        finally:
            read.set()
            await asyncio.wait_for(running, GUARD)
        return results

    results = backend.loop.run(asyncio.wait_for(body(), 2 * GUARD))  # type: ignore[union-attr]
    assert seen == [True]
    assert results == ("a", 0, 1, 1)
    assert backend.store.load_checkpoint("slow") == 1  # type: ignore[attr-defined]


class RolledBackError(Exception):
    pass


def test_a_task_that_outlives_a_unit_of_work_leaves_its_connection_alone(
    postgres_dsn: str, postgres_schema: str, loop_thread: Any
) -> None:
    """A task started inside a unit inherits its context; once the unit ended, its calls
    must not run on the unit's connection, which is back in the pool (here: lent to the
    next unit, which rolls back)."""
    from esframework.postgres import AsyncPostgresEventStore

    async def body() -> int:
        async with AsyncPostgresEventStore(
            postgres_dsn, schema=postgres_schema, min_size=1, max_size=1
        ) as store:
            await store.migrate()
            ended = asyncio.Event()

            async def later() -> None:
                await ended.wait()
                await store.append("later", "S", make(1), expected_version=0)

            async with store.transaction():
                task = asyncio.create_task(later())
            with contextlib.suppress(RolledBackError):
                async with store.transaction():  # the pool's one connection again
                    ended.set()
                    await asyncio.sleep(0.2)  # room for the task to (wrongly) join it
                    raise RolledBackError
            await asyncio.wait_for(task, GUARD)
            return await store.stream_version("later")

    assert loop_thread.run(body()) == 1
