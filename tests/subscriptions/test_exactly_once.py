"""Commands a handler issues commit with its batch: exactly once, also after a retry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from esframework import (
    AsyncRepository,
    AsyncSQLiteEventStore,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    SQLiteEventStore,
    Subscription,
    SubscriptionWorker,
)
from tests.domain import Wallet, WalletOpened


def seed(store: Any) -> None:
    wallets = Repository(Wallet, store=store)
    for name in ("ann", "bob", "cid"):
        wallets.save(Wallet.open(name, name.title()))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_retried_batch_issues_each_command_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """One transient failure in a batch of three: the batch is retried, and the commands
    issued by its first attempt roll back with it (3 commands, not 6)."""
    if kind == "postgres":
        store: Any = request.getfixturevalue("postgres_store")
    else:
        store = SQLiteEventStore(request.getfixturevalue("sqlite_path"))
    seed(store)
    mirrors = Repository(Wallet, store=store)
    failures = [RuntimeError("transient")]

    def handle(envelope: Envelope[Any], _: Any) -> None:
        if isinstance(envelope.event, WalletOpened) and not envelope.stream_id.startswith("copy"):
            mirrors.save(Wallet.open(f"copy-{envelope.stream_id}", envelope.event.owner))
            if envelope.stream_id == "bob" and failures:
                raise failures.pop()

    worker = SubscriptionWorker(
        store,
        Subscription(
            name="mirror",
            handler=handle,
            batch_size=3,
            retry_delay=0.01,
            stream_types={"TestWallet"},
        ),
    )
    worker.run(until_caught_up=True)
    copies = [e for e in store.read_all() if e.stream_id.startswith("copy-")]
    assert sorted(e.stream_id for e in copies) == ["copy-ann", "copy-bob", "copy-cid"]
    assert not failures
    if kind == "sqlite":
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_retried_async_batch_issues_each_command_once(
    kind: str, request: pytest.FixtureRequest, loop_thread: Any
) -> None:
    if kind == "postgres":
        store: Any = request.getfixturevalue("async_postgres_store")
        seed(request.getfixturevalue("postgres_store"))  # the same schema
    else:
        path = request.getfixturevalue("sqlite_path")
        with SQLiteEventStore(path) as sync:
            seed(sync)
        store = AsyncSQLiteEventStore(path)
    mirrors = AsyncRepository(Wallet, store=store)
    failures = [RuntimeError("transient")]

    async def handle(envelope: Envelope[Any], _: Any) -> None:
        if isinstance(envelope.event, WalletOpened) and not envelope.stream_id.startswith("copy"):
            await mirrors.save(Wallet.open(f"copy-{envelope.stream_id}", envelope.event.owner))
            if envelope.stream_id == "bob" and failures:
                raise failures.pop()

    async def body() -> list[str]:
        worker = AsyncSubscriptionWorker(
            store,
            AsyncSubscription(
                name="mirror",
                handler=handle,
                batch_size=3,
                retry_delay=0.01,
                stream_types={"TestWallet"},
            ),
        )
        await worker.run(until_caught_up=True)
        events = await store.read_all()
        if kind == "sqlite":
            await store.close()
        return [e.stream_id for e in events if e.stream_id.startswith("copy-")]

    copies = loop_thread.run(body()) if kind == "postgres" else asyncio.run(body())
    assert sorted(copies) == ["copy-ann", "copy-bob", "copy-cid"]
    assert not failures
