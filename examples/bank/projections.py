"""The bank's read models: balances, statements and transfers, kept by projections.

Each projection writes through the connection its subscription gives it, in the same
transaction as the subscription's checkpoint, so its tables are exactly in step with the
events it has seen. The SQL is written once for SQLite and PostgreSQL: `execute_sql` takes
psycopg's `%s` placeholders on both, and table names without a schema are the store's own
(its file, or on PostgreSQL its schema).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from esframework import Envelope, Subscription, SubscriptionStore, execute_sql
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


def create_tables(store: SubscriptionStore[Any]) -> None:
    with store.transaction() as connection:
        for name, columns in TABLES.items():
            execute_sql(connection, f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


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

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event, account = envelope.event, envelope.stream_id
        if isinstance(event, AccountOpened):
            execute_sql(
                connection,
                "INSERT INTO bank_balances (account, owner, currency, balance, status) "
                "VALUES (%s, %s, %s, '0', 'open')",
                (account, event.owner, event.currency),
            )
        elif (status := _STATUS.get(type(event))) is not None:
            execute_sql(
                connection,
                "UPDATE bank_balances SET status = %s WHERE account = %s",
                (status, account),
            )
        elif (movement := _movement(event)) is not None:
            description, amount = movement
            [(balance,)] = execute_sql(
                connection, "SELECT balance FROM bank_balances WHERE account = %s", (account,)
            )
            balance = str(Decimal(balance) + amount)
            execute_sql(
                connection,
                "UPDATE bank_balances SET balance = %s WHERE account = %s",
                (balance, account),
            )
            execute_sql(
                connection,
                "INSERT INTO bank_statement (account, version, position, recorded_at, "
                "description, amount, balance) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    account,
                    envelope.version,
                    envelope.position,
                    envelope.recorded_at.isoformat(),
                    description,
                    str(amount),
                    balance,
                ),
            )

    def reset(self, connection: Any) -> None:
        execute_sql(connection, "DELETE FROM bank_statement")
        execute_sql(connection, "DELETE FROM bank_balances")


class TransfersProjection:
    """Keeps `bank_transfers`: every transfer with its status and, if it failed, why."""

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event = envelope.event
        if isinstance(event, TransferRequested):
            execute_sql(
                connection,
                "INSERT INTO bank_transfers (transfer, source, destination, amount, currency, "
                "status, reason) VALUES (%s, %s, %s, %s, %s, 'requested', '')",
                (
                    envelope.stream_id,
                    event.source,
                    event.destination,
                    str(event.amount),
                    event.currency,
                ),
            )
        elif isinstance(event, TransferDebited):
            self._set(connection, event.transfer_id, "debited", "")
        elif isinstance(event, TransferCompleted):
            self._set(connection, envelope.stream_id, "completed", "")
        elif isinstance(event, TransferFailed):
            self._set(connection, envelope.stream_id, "failed", event.reason)

    def _set(self, connection: Any, transfer: str, status: str, reason: str) -> None:
        execute_sql(
            connection,
            "UPDATE bank_transfers SET status = %s, reason = %s WHERE transfer = %s",
            (status, reason, transfer),
        )

    def reset(self, connection: Any) -> None:
        execute_sql(connection, "DELETE FROM bank_transfers")


def projections() -> list[Subscription[Any]]:
    """The subscriptions that keep the bank's read models."""
    return [
        Subscription(name="bank-accounts", handler=AccountsProjection(), stream_types=["Account"]),
        Subscription(
            name="bank-transfers",
            handler=TransfersProjection(),
            event_types=[TransferRequested, TransferDebited, TransferCompleted, TransferFailed],
        ),
    ]


@attrs.frozen
class Views:
    """Reads the read models."""

    store: SubscriptionStore[Any]

    def balances(self) -> list[tuple[str, str, str, Decimal, str]]:
        """Every account: id, owner, currency, balance, status."""
        rows = self._query(
            "SELECT account, owner, currency, balance, status FROM bank_balances ORDER BY account"
        )
        return [(a, o, c, Decimal(b), s) for a, o, c, b, s in rows]

    def statement(self, account: str) -> list[tuple[int, str, str, Decimal, Decimal]]:
        """An account's movements: version, time, description, amount, balance after."""
        rows = self._query(
            "SELECT version, recorded_at, description, amount, balance FROM bank_statement "
            "WHERE account = %s ORDER BY version",
            account,
        )
        return [(v, t, d, Decimal(a), Decimal(b)) for v, t, d, a, b in rows]

    def transfers(self) -> list[tuple[str, str, str, Decimal, str, str, str]]:
        """Every transfer: id, source, destination, amount, currency, status, reason."""
        rows = self._query(
            "SELECT transfer, source, destination, amount, currency, status, reason "
            "FROM bank_transfers ORDER BY transfer"
        )
        return [(t, s, d, Decimal(a), c, st, r) for t, s, d, a, c, st, r in rows]

    def _query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.store.transaction() as connection:
            return execute_sql(connection, statement, params)
