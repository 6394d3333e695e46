"""The bank's read models: balances, statements and transfers, kept by projections.

Each projection writes through the connection its subscription gives it, in the same
transaction as the subscription's checkpoint, so its tables are exactly in step with the
events it has seen. The SQL is portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from esframework import Envelope, SQLiteEventStore, Subscription, SubscriptionStore
from examples.bank.domain import (
    AccountClosed,
    AccountFrozen,
    AccountOpened,
    AccountUnfrozen,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferCompleted,
    TransferCredited,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)

TABLES = {
    "bank_balances": "account TEXT PRIMARY KEY, owner TEXT NOT NULL, currency TEXT NOT NULL, "
    "balance TEXT NOT NULL, status TEXT NOT NULL",
    "bank_statement": "account TEXT NOT NULL, version INTEGER NOT NULL, "
    "position INTEGER NOT NULL, recorded_at TEXT NOT NULL, description TEXT NOT NULL, "
    "amount TEXT NOT NULL, balance TEXT NOT NULL, PRIMARY KEY (account, version)",
    "bank_transfers": "transfer TEXT PRIMARY KEY, source TEXT NOT NULL, "
    "destination TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, "
    "status TEXT NOT NULL, reason TEXT NOT NULL",
}


@attrs.frozen
class Sql:
    """Runs `?`-style SQL on SQLite or PostgreSQL, with table names in the store's schema."""

    postgres: bool
    prefix: str

    @classmethod
    def for_store(cls, store: SubscriptionStore[Any]) -> Sql:
        if isinstance(store, SQLiteEventStore):
            return cls(postgres=False, prefix="")
        from esframework.postgres import PostgresEventStore

        if isinstance(store, PostgresEventStore):
            return cls(postgres=True, prefix=f'"{store.schema}".')
        msg = f"the bank's read models need SQLite or PostgreSQL, not {type(store).__name__}"
        raise TypeError(msg)

    def __call__(self, connection: Any, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        statement = statement.replace("{t}", self.prefix)
        if self.postgres:
            statement = statement.replace("?", "%s")
        cursor = connection.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []

    def create_tables(self, store: SubscriptionStore[Any]) -> None:
        with store.transaction() as connection:
            for name, columns in TABLES.items():
                self(connection, f"CREATE TABLE IF NOT EXISTS {{t}}{name} ({columns})")


# Money movements, as (description, signed amount) for the statement.
def _movement(event: object) -> tuple[str, Decimal] | None:
    if isinstance(event, MoneyDeposited):
        return "deposit", event.amount
    if isinstance(event, MoneyWithdrawn):
        return "withdrawal", -event.amount
    if isinstance(event, TransferDebited):
        return f"transfer to {event.destination}", -event.amount
    if isinstance(event, TransferCredited):
        return f"transfer from {event.source}", event.amount
    if isinstance(event, TransferRefunded):
        return f"refund: {event.reason}", event.amount
    return None


_STATUS = {AccountFrozen: "frozen", AccountUnfrozen: "open", AccountClosed: "closed"}


class AccountsProjection:
    """Keeps `bank_balances` (one row per account) and `bank_statement` (one per movement)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        sql, event, account = self._sql, envelope.event, envelope.stream_id
        if isinstance(event, AccountOpened):
            sql(
                connection,
                "INSERT INTO {t}bank_balances (account, owner, currency, balance, status) "
                "VALUES (?, ?, ?, '0', 'open')",
                account,
                event.owner,
                event.currency,
            )
        elif (status := _STATUS.get(type(event))) is not None:
            sql(
                connection,
                "UPDATE {t}bank_balances SET status = ? WHERE account = ?",
                status,
                account,
            )
        elif (movement := _movement(event)) is not None:
            description, amount = movement
            [(balance,)] = sql(
                connection, "SELECT balance FROM {t}bank_balances WHERE account = ?", account
            )
            balance = str(Decimal(balance) + amount)
            sql(
                connection,
                "UPDATE {t}bank_balances SET balance = ? WHERE account = ?",
                balance,
                account,
            )
            sql(
                connection,
                "INSERT INTO {t}bank_statement (account, version, position, recorded_at, "
                "description, amount, balance) VALUES (?, ?, ?, ?, ?, ?, ?)",
                account,
                envelope.version,
                envelope.position,
                envelope.recorded_at.isoformat(),
                description,
                str(amount),
                balance,
            )

    def reset(self, connection: Any) -> None:
        self._sql(connection, "DELETE FROM {t}bank_statement")
        self._sql(connection, "DELETE FROM {t}bank_balances")


class TransfersProjection:
    """Keeps `bank_transfers`: every transfer with its status and, if it failed, why."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        sql, event = self._sql, envelope.event
        if isinstance(event, TransferRequested):
            sql(
                connection,
                "INSERT INTO {t}bank_transfers (transfer, source, destination, amount, currency, "
                "status, reason) VALUES (?, ?, ?, ?, ?, 'requested', '')",
                envelope.stream_id,
                event.source,
                event.destination,
                str(event.amount),
                event.currency,
            )
        elif isinstance(event, TransferDebited):
            self._set(connection, event.transfer_id, "debited", "")
        elif isinstance(event, TransferCompleted):
            self._set(connection, envelope.stream_id, "completed", "")
        elif isinstance(event, TransferFailed):
            self._set(connection, envelope.stream_id, "failed", event.reason)

    def _set(self, connection: Any, transfer: str, status: str, reason: str) -> None:
        self._sql(
            connection,
            "UPDATE {t}bank_transfers SET status = ?, reason = ? WHERE transfer = ?",
            status,
            reason,
            transfer,
        )

    def reset(self, connection: Any) -> None:
        self._sql(connection, "DELETE FROM {t}bank_transfers")


def projections(sql: Sql) -> list[Subscription[Any]]:
    """The subscriptions that keep the bank's read models."""
    return [
        Subscription(
            name="bank-accounts", handler=AccountsProjection(sql), stream_types=["Account"]
        ),
        Subscription(
            name="bank-transfers",
            handler=TransfersProjection(sql),
            event_types=[TransferRequested, TransferDebited, TransferCompleted, TransferFailed],
        ),
    ]


@attrs.frozen
class Views:
    """Reads the read models."""

    store: SubscriptionStore[Any]
    sql: Sql

    def balances(self) -> list[tuple[str, str, str, Decimal, str]]:
        """Every account: id, owner, currency, balance, status."""
        rows = self._query(
            "SELECT account, owner, currency, balance, status FROM {t}bank_balances "
            "ORDER BY account"
        )
        return [(a, o, c, Decimal(b), s) for a, o, c, b, s in rows]

    def statement(self, account: str) -> list[tuple[int, str, str, Decimal, Decimal]]:
        """An account's movements: version, time, description, amount, balance after."""
        rows = self._query(
            "SELECT version, recorded_at, description, amount, balance FROM {t}bank_statement "
            "WHERE account = ? ORDER BY version",
            account,
        )
        return [(v, t, d, Decimal(a), Decimal(b)) for v, t, d, a, b in rows]

    def transfers(self) -> list[tuple[str, str, str, Decimal, str, str, str]]:
        """Every transfer: id, source, destination, amount, currency, status, reason."""
        rows = self._query(
            "SELECT transfer, source, destination, amount, currency, status, reason "
            "FROM {t}bank_transfers ORDER BY transfer"
        )
        return [(t, s, d, Decimal(a), c, st, r) for t, s, d, a, c, st, r in rows]

    def _query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.store.transaction() as connection:
            return self.sql(connection, statement, *params)
