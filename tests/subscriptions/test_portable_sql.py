"""One projection for SQLite and PostgreSQL: psycopg-style placeholders run on both through
`execute_sql`, and unqualified table names are the store's (its file, or its schema)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from esframework import (
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    Subscription,
    SubscriptionWorker,
    execute_sql,
    execute_sql_async,
)
from tests.conftest import Backend
from tests.domain import MoneyAdded, Wallet, WalletOpened

KINDS = ["sqlite", "sqlite-async", "postgres", "postgres-async"]

CREATE = "CREATE TABLE IF NOT EXISTS portable_wallets (wallet TEXT PRIMARY KEY, total INTEGER)"
OPEN = "INSERT INTO portable_wallets (wallet, total) VALUES (%s, 0)"
ADD = "UPDATE portable_wallets SET total = total + %(amount)s WHERE wallet = %(wallet)s"
SELECT = "SELECT wallet, total FROM portable_wallets WHERE wallet LIKE 'w%%' ORDER BY wallet"


class WalletTotals:
    """The projection, written once for both stores."""

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event = envelope.event
        if isinstance(event, WalletOpened):
            execute_sql(connection, OPEN, (envelope.stream_id,))
        elif isinstance(event, MoneyAdded):
            params = {"amount": int(event.amount), "wallet": envelope.stream_id}
            execute_sql(connection, ADD, params)

    def reset(self, connection: Any) -> None:
        execute_sql(connection, "DELETE FROM portable_wallets")


class AsyncWalletTotals:
    """The same projection for the async stores."""

    async def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event = envelope.event
        if isinstance(event, WalletOpened):
            await execute_sql_async(connection, OPEN, (envelope.stream_id,))
        elif isinstance(event, MoneyAdded):
            params = {"amount": int(event.amount), "wallet": envelope.stream_id}
            await execute_sql_async(connection, ADD, params)

    async def reset(self, connection: Any) -> None:
        await execute_sql_async(connection, "DELETE FROM portable_wallets")


def save_wallets(backend: Backend) -> None:
    repository = Repository(Wallet, store=backend.store)
    for wallet_id, amounts in (("w1", (2, 3)), ("w2", (7,)), ("x", (1,))):
        wallet = Wallet.open(wallet_id, owner=wallet_id)
        for amount in amounts:
            wallet.add(Decimal(amount))
        repository.save(wallet)


def project(backend: Backend) -> list[tuple[Any, ...]]:
    """Create the table, run the projection over the events, and read it back."""
    store = backend.raw
    if backend.loop is None:
        with store.transaction() as connection:
            execute_sql(connection, CREATE)
        SubscriptionWorker(store, Subscription(name="totals", handler=WalletTotals())).run(
            until_caught_up=True
        )
        with store.transaction() as connection:
            return execute_sql(connection, SELECT)

    async def body() -> list[tuple[Any, ...]]:
        async with store.transaction() as connection:
            await execute_sql_async(connection, CREATE)
        worker = AsyncSubscriptionWorker(
            store, AsyncSubscription(name="totals", handler=AsyncWalletTotals())
        )
        await worker.run(until_caught_up=True)
        async with store.transaction() as connection:
            return await execute_sql_async(connection, SELECT)

    return backend.loop.run(body())


@pytest.mark.parametrize("backend", KINDS, indirect=True)
def test_one_projection_runs_on_every_store(backend: Backend) -> None:
    save_wallets(backend)
    assert project(backend) == [("w1", 5), ("w2", 7)]


@pytest.mark.parametrize("backend", ["postgres", "postgres-async"], indirect=True)
def test_unqualified_tables_are_in_the_store_schema(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    save_wallets(backend)
    project(backend)
    schema = backend.raw.schema
    with request.getfixturevalue("postgres_store").connection() as connection:
        rows = execute_sql(
            connection,
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'portable_wallets' AND table_schema IN (%s, 'public')",
            (schema,),
        )
    assert rows == [(schema,)]


def test_a_stray_percent_is_refused(tmp_path: Any) -> None:
    import sqlite3

    connection = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(ValueError, match="%%"):
        execute_sql(connection, "SELECT 5 % 2")
    assert execute_sql(connection, "SELECT 5 %% 2, %s, %s", ("a", 1)) == [(1, "a", 1)]
    connection.close()
