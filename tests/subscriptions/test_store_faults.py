"""A store that fails a handler (a lost connection, a lost lease, a locked database, an
exhausted pool) is not the event's fault: the batch is retried from the checkpoint, and the
event is never parked nor counted against its `max_attempts`."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from esframework import (
    AsyncRepository,
    AsyncRunner,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    Runner,
    SQLiteEventStore,
    Subscription,
    SubscriptionWorker,
)
from esframework.errors import StoreUnavailableError
from tests.domain import Wallet, WalletOpened
from tests.subscriptions.conftest import Harness, Sql
from tests.subscriptions.test_delivery import run_in_thread, save_wallets
from tests.subscriptions.test_processes import wait_for


@pytest.mark.parametrize(("dead_letter", "wrapped"), [(True, False), (False, True)])
def test_a_locked_second_store_is_retried_not_parked(
    harness: Harness, tmp_path: Path, dead_letter: bool, wrapped: bool
) -> None:
    """The handler copies each new wallet into another SQLite store, which another
    connection keeps locked for a while: its `StoreUnavailableError` (raised as it is, or
    wrapped in the handler's own error) sends the worker back to its checkpoint, and once
    the lock is gone every event is delivered, none parked (and, without dead letters, the
    worker never stops)."""
    save_wallets(harness, 3, deposits=1)
    outbox_path = tmp_path / "outbox.db"
    outbox = SQLiteEventStore(outbox_path, timeout=0.05)
    copies = Repository(Wallet, store=outbox)
    locker = sqlite3.connect(outbox_path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    refused: list[int] = []

    def handle(envelope: Envelope[Any], _: Sql) -> None:
        if isinstance(envelope.event, WalletOpened):
            if len(refused) == 3 and locker.in_transaction:
                locker.execute("ROLLBACK")  # the other writer is done
            try:
                copies.save(Wallet.open(f"copy-{envelope.stream_id}", envelope.event.owner))
            except StoreUnavailableError as error:
                refused.append(envelope.position)
                if wrapped:
                    message = "could not copy the wallet"
                    raise RuntimeError(message) from error
                raise

    worker = harness.worker(handle, max_attempts=1, dead_letter=dead_letter)
    done = run_in_thread(worker)
    try:
        wait_for(
            lambda: done.is_set() or harness.store.load_checkpoint("test") == harness.store.head()
        )
        assert not done.is_set(), "the worker stopped"
    finally:
        worker.stopper.set()
        assert done.wait(30)
    assert len(refused) >= 3
    assert harness.store.parked("test") == []
    assert sorted(e.stream_id for e in outbox.read_all()) == ["copy-w0", "copy-w1", "copy-w2"]
    outbox.close()
    locker.close()


def _terminate(dsn: str, pid: int | None) -> None:
    """End the session `pid` and wait until it has gone: a session signalled but not yet
    gone still holds its locks (a lease's too, so a checkpoint's move could still pass)."""
    assert pid is not None
    with psycopg.connect(dsn, autocommit=True) as admin:
        (gone,) = admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
        assert gone, f"session {pid} still there 10 s after it was told to end"


@pytest.mark.parametrize("victim", ["handler", "lease"])
def test_a_connection_killed_under_the_handler_is_retried_not_parked(
    postgres_store: Any, postgres_dsn: str, victim: str
) -> None:
    """The server ends the handler's connection (or the lease's) while the handler runs, on
    the event's first two deliveries (its batch's, then its own): the handler's next
    statement (or the checkpoint's move) fails. The batch rolls back and is retried from the
    checkpoint: nothing parked, every event applied once."""
    save_wallets_to(postgres_store, 4)
    table = f'"{postgres_store.schema}".seen'
    with postgres_store.transaction() as connection:
        connection.execute(f"CREATE TABLE {table} (position BIGINT PRIMARY KEY)")
    kills: list[int] = []

    def handle(envelope: Envelope[Any], connection: psycopg.Connection[Any]) -> None:
        if envelope.version == 2 and envelope.stream_id == "w1" and len(kills) < 2:
            pid = connection.info.backend_pid if victim == "handler" else worker._lease.pid
            kills.append(envelope.position)
            _terminate(postgres_dsn, pid)
        connection.execute(f"INSERT INTO {table} VALUES (%s)", (envelope.position,))

    worker = SubscriptionWorker(
        postgres_store,
        Subscription(
            name="seen", handler=handle, max_attempts=1, dead_letter=True, lease_interval=0.1
        ),
    )
    done = run_in_thread(worker)
    try:
        wait_for(lambda: postgres_store.load_checkpoint("seen") == postgres_store.head())
    finally:
        worker.stopper.set()
        assert done.wait(30)
    assert len(kills) == 2
    assert postgres_store.parked("seen") == []
    with postgres_store.transaction() as connection:
        seen = [row[0] for row in connection.execute(f"SELECT position FROM {table} ORDER BY 1")]
    assert seen == [e.position for e in postgres_store.read_all()]


@pytest.mark.parametrize("victim", ["handler", "lease"])
def test_a_connection_killed_under_an_async_handler_is_retried_not_parked(
    postgres_store: Any,
    async_postgres_store: Any,
    postgres_dsn: str,
    loop_thread: Any,
    victim: str,
) -> None:
    save_wallets_to(postgres_store, 4)
    table = f'"{postgres_store.schema}".seen'
    with postgres_store.transaction() as connection:
        connection.execute(f"CREATE TABLE {table} (position BIGINT PRIMARY KEY)")
    kills: list[int] = []

    async def handle(envelope: Envelope[Any], connection: psycopg.AsyncConnection[Any]) -> None:
        if envelope.version == 2 and envelope.stream_id == "w1" and len(kills) < 2:
            pid = connection.info.backend_pid if victim == "handler" else worker._lease.pid
            kills.append(envelope.position)
            await asyncio.to_thread(_terminate, postgres_dsn, pid)
        await connection.execute(f"INSERT INTO {table} VALUES (%s)", (envelope.position,))

    worker = AsyncSubscriptionWorker(
        async_postgres_store,
        AsyncSubscription(
            name="seen", handler=handle, max_attempts=1, dead_letter=True, lease_interval=0.1
        ),
    )
    running = asyncio.run_coroutine_threadsafe(worker.run(), loop_thread.loop)
    try:
        wait_for(lambda: postgres_store.load_checkpoint("seen") == postgres_store.head())
    finally:
        worker.stopper.set()
        running.result(30)
    assert len(kills) == 2
    assert postgres_store.parked("seen") == []
    with postgres_store.transaction() as connection:
        seen = [row[0] for row in connection.execute(f"SELECT position FROM {table} ORDER BY 1")]
    assert seen == [e.position for e in postgres_store.read_all()]


def save_wallets_to(store: Any, count: int) -> None:
    wallets = Repository(Wallet, store=store)
    for i in range(count):
        wallet = Wallet.open(f"w{i}", f"owner {i}")
        wallet.add(Decimal(1))
        wallets.save(wallet)


PROCESS_MANAGERS = ("pm0", "pm1", "pm2")


def _copies_done(store: Any, wallets: int) -> bool:
    copies = {e.stream_id for e in store.read_all(limit=10_000) if e.stream_id.startswith("pm")}
    return len(copies) == wallets * len(PROCESS_MANAGERS)


def test_three_process_managers_run_on_a_pool_of_three(
    postgres_dsn: str, postgres_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each batch holds one pooled connection, and the commands its handler issues join that
    batch's transaction: three process managers need no more than three connections. A
    short pool timeout is never met (no batch is retried for want of a connection), and
    nothing is parked."""
    caplog.set_level(logging.WARNING, logger="esframework")
    from esframework.postgres import PostgresEventStore

    with PostgresEventStore(
        postgres_dsn, schema=postgres_schema, max_size=3, pool_timeout=2
    ) as store:
        store.migrate()
        save_wallets_to(store, 10)
        copies = Repository(Wallet, store=store)

        def manager(name: str) -> Any:
            def handle(envelope: Envelope[Any], _: Any) -> None:
                if isinstance(envelope.event, WalletOpened) and envelope.stream_id[0] == "w":
                    copy = f"{name}-{envelope.stream_id}"
                    time.sleep(0.02)  # a slow handler: the three batches overlap
                    copies.load(envelope.stream_id)  # a read, too, in the same transaction
                    copies.save(Wallet.open(copy, envelope.event.owner))

            return handle

        runner = Runner(
            store,
            [
                Subscription(
                    name=name, handler=manager(name), batch_size=2, max_attempts=1, dead_letter=True
                )
                for name in PROCESS_MANAGERS
            ],
        )
        thread = threading.Thread(target=runner.run)  # not the main thread: no signals
        thread.start()
        try:
            wait_for(lambda: _copies_done(store, 10))
        finally:
            runner.stop()
            thread.join(30)
        assert [store.parked(name) for name in PROCESS_MANAGERS] == [[], [], []]
    assert not [r for r in caplog.records if "resuming from its checkpoint" in r.getMessage()]


def test_three_async_process_managers_run_on_a_pool_of_three(
    postgres_dsn: str,
    postgres_schema: str,
    postgres_store: Any,
    loop_thread: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from esframework.postgres import AsyncPostgresEventStore

    caplog.set_level(logging.WARNING, logger="esframework")

    save_wallets_to(postgres_store, 10)

    async def body() -> list[list[Any]]:
        async with AsyncPostgresEventStore(
            postgres_dsn, schema=postgres_schema, max_size=3, pool_timeout=2
        ) as store:
            copies = AsyncRepository(Wallet, store=store)

            def manager(name: str) -> Any:
                async def handle(envelope: Envelope[Any], _: Any) -> None:
                    if isinstance(envelope.event, WalletOpened) and envelope.stream_id[0] == "w":
                        await asyncio.sleep(0.02)  # the three batches overlap
                        await copies.load(envelope.stream_id)
                        await copies.save(Wallet.open(f"{name}-{envelope.stream_id}", "x"))

                return handle

            runner = AsyncRunner(
                store,
                [
                    AsyncSubscription(
                        name=name,
                        handler=manager(name),
                        batch_size=2,
                        max_attempts=1,
                        dead_letter=True,
                    )
                    for name in PROCESS_MANAGERS
                ],
            )
            running = asyncio.ensure_future(runner.run(handle_signals=False))
            for _ in range(600):
                if running.done() or _copies_done(postgres_store, 10):
                    break
                await asyncio.sleep(0.05)
            runner.stop()
            await running
            return [await store.parked(name) for name in PROCESS_MANAGERS]

    assert loop_thread.run(body()) == [[], [], []]
    assert _copies_done(postgres_store, 10)
    assert not [r for r in caplog.records if "resuming from its checkpoint" in r.getMessage()]
