"""A projecting worker process for the stopped-holder tests, sync or async.

    python -m tests.subscriptions.pausable postgres DSN SCHEMA LEASE_TIMEOUT sync|async

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
from tests.subscriptions.projector import TABLE, create_table

DELAY = 0.005


def statement(envelope: Envelope[Any], table: str) -> tuple[str, tuple[Any, ...]] | None:
    event = envelope.event
    if isinstance(event, WalletOpened):
        return (
            f"INSERT INTO {table} (wallet, balance, events, handled_by) VALUES (%s, 0, 1, %s)",
            (envelope.stream_id, os.getpid()),
        )
    if isinstance(event, MoneyAdded):
        update = (
            f"UPDATE {table} SET balance = balance + %s, events = events + 1, "
            "handled_by = %s WHERE wallet = %s"
        )
        return update, (int(event.amount), os.getpid(), envelope.stream_id)
    return None


def run_sync(dsn: str, schema: str, table: str, lease_timeout: float) -> None:
    from esframework.postgres import PostgresEventStore

    def handle(envelope: Envelope[Any], connection: Any) -> None:
        time.sleep(DELAY)
        if (sql := statement(envelope, table)) is not None:
            connection.execute(*sql)

    with PostgresEventStore(dsn, schema=schema, lease_timeout=lease_timeout) as store:
        with store.transaction() as connection:
            create_table(connection, table)
        subscription = Subscription(
            name="balances", handler=handle, batch_size=20, poll_interval=0.2, lease_interval=0.1
        )
        print("started", flush=True)  # noqa: T201
        Runner(store, [subscription], report_every=0.5).run()
    print("stopped cleanly", flush=True)  # noqa: T201


async def run_async(dsn: str, schema: str, table: str, lease_timeout: float) -> None:
    from esframework.postgres import AsyncPostgresEventStore

    async def handle(envelope: Envelope[Any], connection: Any) -> None:
        await asyncio.sleep(DELAY)
        if (sql := statement(envelope, table)) is not None:
            await connection.execute(*sql)

    async with AsyncPostgresEventStore(dsn, schema=schema, lease_timeout=lease_timeout) as store:
        async with store.transaction() as connection:
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (wallet TEXT PRIMARY KEY, "
                "balance INTEGER NOT NULL, events INTEGER NOT NULL, handled_by INTEGER NOT NULL)"
            )
        subscription = AsyncSubscription(
            name="balances", handler=handle, batch_size=20, poll_interval=0.2, lease_interval=0.1
        )
        print("started", flush=True)  # noqa: T201
        await AsyncRunner(store, [subscription], report_every=0.5).run()
    print("stopped cleanly", flush=True)  # noqa: T201


def main() -> None:
    _, dsn, schema, lease_timeout, mode = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format=f"{os.getpid()} %(message)s")
    table = f'"{schema}".{TABLE}'
    if mode == "async":
        asyncio.run(run_async(dsn, schema, table, float(lease_timeout)))
    else:
        run_sync(dsn, schema, table, float(lease_timeout))


if __name__ == "__main__":
    main()
