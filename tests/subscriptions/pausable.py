"""A projecting worker process for the stopped-holder tests, sync or async.

    python -m tests.subscriptions.pausable postgres DSN SCHEMA LEASE_TIMEOUT sync|async
    python -m tests.subscriptions.pausable sqlite PATH LEASE_TIMEOUT sync|async

It projects wallet balances like `projector`, slowly (5 ms an event), so that a test can
stop it with SIGSTOP in the middle of a batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from esframework import AsyncRunner, AsyncSubscription, Envelope, Runner, Subscription
from tests.domain import MoneyAdded, WalletOpened
from tests.subscriptions.projector import TABLE

DELAY = 0.005
CREATE = (
    "CREATE TABLE IF NOT EXISTS {table} (wallet TEXT PRIMARY KEY, balance INTEGER NOT NULL, "
    "events INTEGER NOT NULL, handled_by INTEGER NOT NULL)"
)


def statement(envelope: Envelope[Any], table: str, p: str) -> tuple[str, tuple[Any, ...]] | None:
    event = envelope.event
    if isinstance(event, WalletOpened):
        return (
            f"INSERT INTO {table} (wallet, balance, events, handled_by) VALUES ({p}, 0, 1, {p})",
            (envelope.stream_id, os.getpid()),
        )
    if isinstance(event, MoneyAdded):
        update = (
            f"UPDATE {table} SET balance = balance + {p}, events = events + 1, "
            f"handled_by = {p} WHERE wallet = {p}"
        )
        return update, (int(event.amount), os.getpid(), envelope.stream_id)
    return None


def subscription_options() -> dict[str, Any]:
    return {"name": "balances", "batch_size": 20, "poll_interval": 0.2, "lease_interval": 0.1}


def run_sync(backend: list[str], lease_timeout: float) -> None:
    store: Any
    if backend[0] == "sqlite":
        from esframework import SQLiteEventStore

        store, table, p = SQLiteEventStore(backend[1], lease_timeout=lease_timeout), TABLE, "?"
    else:
        from esframework.postgres import PostgresEventStore

        store = PostgresEventStore(backend[1], schema=backend[2], lease_timeout=lease_timeout)
        table, p = f'"{backend[2]}".{TABLE}', "%s"

    def handle(envelope: Envelope[Any], connection: Any) -> None:
        time.sleep(DELAY)
        if (sql := statement(envelope, table, p)) is not None:
            connection.execute(*sql)

    with store:
        with store.transaction() as connection:
            connection.execute(CREATE.format(table=table))
        print("started", flush=True)  # noqa: T201
        subscription = Subscription(handler=handle, **subscription_options())
        Runner(store, [subscription], report_every=0.5).run()
    print("stopped cleanly", flush=True)  # noqa: T201


async def run_async(backend: list[str], lease_timeout: float) -> None:
    store: Any
    if backend[0] == "sqlite":
        from esframework import AsyncSQLiteEventStore

        store = AsyncSQLiteEventStore(backend[1], lease_timeout=lease_timeout)
        table, p, awaited = TABLE, "?", False  # handlers get a plain sqlite3 connection
    else:
        from esframework.postgres import AsyncPostgresEventStore

        store = AsyncPostgresEventStore(backend[1], schema=backend[2], lease_timeout=lease_timeout)
        table, p, awaited = f'"{backend[2]}".{TABLE}', "%s", True

    async def handle(envelope: Envelope[Any], connection: Any) -> None:
        await asyncio.sleep(DELAY)
        if (sql := statement(envelope, table, p)) is not None:
            done = connection.execute(*sql)
            if awaited:
                await done

    async with store:
        async with store.transaction() as connection:
            done = connection.execute(CREATE.format(table=table))
            if awaited:
                await done
        print("started", flush=True)  # noqa: T201
        subscription = AsyncSubscription(handler=handle, **subscription_options())
        await AsyncRunner(store, [subscription], report_every=0.5).run()
    print("stopped cleanly", flush=True)  # noqa: T201


def main() -> None:
    *backend, lease_timeout, mode = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format=f"{os.getpid()} %(message)s")
    if mode == "async":
        asyncio.run(run_async(backend, float(lease_timeout)))
    else:
        run_sync(backend, float(lease_timeout))


if __name__ == "__main__":
    main()
