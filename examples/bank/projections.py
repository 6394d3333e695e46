"""The bank's read models: balances, statements and transfers, kept by projections.

Each projection writes through the connection its subscription gives it, in the same
transaction as the subscription's checkpoint, so its tables are exactly in step with the
events it has seen. The SQL is written once for SQLite and PostgreSQL: `execute_sql` takes
psycopg's `%s` placeholders on both, and table names without a schema are the store's own
(its file, or on PostgreSQL its schema).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from esframework import (
    PERSONAL_DATA_STREAM_TYPE,
    BlueGreen,
    Envelope,
    PersonalDataForgotten,
    Subscription,
    SubscriptionStore,
    execute_sql,
)
from examples.bank.domain import (
    FORGOTTEN_OWNER,
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

# The accounts read model is rolled out blue/green (see `ACCOUNTS`): each version has its own
# tables, suffixed, and its own subscription. v1 is the first release's, without suffix; v2
# added the statement's `counterparty` column (the other account of a transfer); v3 the
# balances' `customer` column, so that forgetting a customer drops their name from it.
ACCOUNTS_VERSION = "v3"
"""The version of the accounts read model this code builds; v1 and v2 came before it."""

_SUFFIX = {"v1": "", "v2": "_v2", "v3": "_v3"}
_COUNTERPARTY = {"v1": False, "v2": True, "v3": True}
_CUSTOMER = {"v1": False, "v2": False, "v3": True}


def accounts_tables(version: str) -> dict[str, str]:
    """The balances and statement tables of `version`, with their columns."""
    suffix = _SUFFIX[version]
    counterparty = "counterparty TEXT NOT NULL, " if _COUNTERPARTY[version] else ""
    customer = ", customer TEXT NOT NULL" if _CUSTOMER[version] else ""
    return {
        f"bank_balances{suffix}": "account TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        f"currency TEXT NOT NULL, balance TEXT NOT NULL, status TEXT NOT NULL{customer}",
        f"bank_statement{suffix}": "account TEXT NOT NULL, version INTEGER NOT NULL, "
        "position INTEGER NOT NULL, recorded_at TEXT NOT NULL, description TEXT NOT NULL, "
        f"amount TEXT NOT NULL, balance TEXT NOT NULL, {counterparty}"
        "PRIMARY KEY (account, version)",
    }


TABLES = {
    "bank_transfers": "transfer TEXT PRIMARY KEY, source TEXT NOT NULL, "
    "destination TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, "
    "status TEXT NOT NULL, reason TEXT NOT NULL",
}


def create_tables(store: SubscriptionStore[Any]) -> None:
    """Create the read models' tables; a new database gets the current accounts version."""
    with store.transaction() as connection:
        for name, columns in TABLES.items():
            execute_sql(connection, f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    ACCOUNTS.install(store, ACCOUNTS_VERSION)


# Money movements, as (description, signed amount, counterparty) for the statement.
def _movement(event: object) -> tuple[str, Decimal, str] | None:
    if isinstance(event, MoneyDeposited):
        return "deposit", event.amount, ""
    if isinstance(event, MoneyWithdrawn):
        return "withdrawal", -event.amount, ""
    if isinstance(event, TransferDebited):
        return f"transfer to {event.destination}", -event.amount, event.destination
    if isinstance(event, TransferCredited):
        return f"transfer from {event.source}", event.amount, event.source
    if isinstance(event, TransferRefunded):
        return f"refund: {event.reason}", event.amount, ""
    return None


_STATUS = {AccountFrozen: "frozen", AccountUnfrozen: "open", AccountClosed: "closed"}


@attrs.frozen
class AccountsProjection:
    """Keeps one version's balances (one row per account) and statement (one per movement)."""

    version: str = ACCOUNTS_VERSION

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event, account = envelope.event, envelope.stream_id
        balances, statement = accounts_tables(self.version)
        if isinstance(event, AccountOpened):
            opened = [account, event.owner, event.currency]
            names = "account, owner, currency"
            if _CUSTOMER[self.version]:
                opened.append(event.customer_id or account)
                names += ", customer"
            execute_sql(
                connection,
                f"INSERT INTO {balances} ({names}, balance, status) "
                f"VALUES ({', '.join(['%s'] * len(opened))}, '0', 'open')",
                opened,
            )
        elif isinstance(event, PersonalDataForgotten) and _CUSTOMER[self.version]:
            # The store no longer reads the name back; this copy of it must go too.
            execute_sql(
                connection,
                f"UPDATE {balances} SET owner = %s WHERE customer = %s",
                (FORGOTTEN_OWNER, event.subject),
            )
        elif (status := _STATUS.get(type(event))) is not None:
            execute_sql(
                connection,
                f"UPDATE {balances} SET status = %s WHERE account = %s",
                (status, account),
            )
        elif (movement := _movement(event)) is not None:
            description, amount, counterparty = movement
            [(balance,)] = execute_sql(
                connection, f"SELECT balance FROM {balances} WHERE account = %s", (account,)
            )
            balance = str(Decimal(balance) + amount)
            execute_sql(
                connection,
                f"UPDATE {balances} SET balance = %s WHERE account = %s",
                (balance, account),
            )
            row = [
                account,
                envelope.version,
                envelope.position,
                envelope.recorded_at.isoformat(),
                description,
                str(amount),
                balance,
            ]
            columns = "account, version, position, recorded_at, description, amount, balance"
            if _COUNTERPARTY[self.version]:
                row.append(counterparty)
                columns += ", counterparty"
            marks = ", ".join(["%s"] * len(row))
            execute_sql(connection, f"INSERT INTO {statement} ({columns}) VALUES ({marks})", row)

    def reset(self, connection: Any) -> None:
        balances, statement = accounts_tables(self.version)
        execute_sql(connection, f"DELETE FROM {statement}")
        execute_sql(connection, f"DELETE FROM {balances}")


# --8<-- [start:blue-green]
def accounts_subscription(version: str) -> Subscription[Any]:
    """The subscription that keeps `version` of the accounts read model."""
    name = "bank-accounts" + _SUFFIX[version].replace("_", "-")
    # v3 also hears of forgotten customers, whose events have a stream type of their own.
    stream_types = ["Account", PERSONAL_DATA_STREAM_TYPE] if _CUSTOMER[version] else ["Account"]
    return Subscription(name=name, handler=AccountsProjection(version), stream_types=stream_types)


def _create_accounts(connection: Any, version: str) -> None:
    for name, columns in accounts_tables(version).items():
        execute_sql(connection, f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


def _drop_accounts(connection: Any, version: str) -> None:
    for name in accounts_tables(version):
        execute_sql(connection, f"DROP TABLE IF EXISTS {name}")


ACCOUNTS = BlueGreen(
    projection="bank-accounts",
    subscription=accounts_subscription,
    create_tables=_create_accounts,
    drop_tables=_drop_accounts,
)
"""The accounts read model's versions, rebuilt side by side and switched for readers at once."""
# --8<-- [end:blue-green]


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
        accounts_subscription(ACCOUNTS_VERSION),
        Subscription(
            name="bank-transfers",
            handler=TransfersProjection(),
            event_types=[TransferRequested, TransferDebited, TransferCompleted, TransferFailed],
        ),
    ]


# --8<-- [start:blue-green-reader]
def read_accounts(
    store: SubscriptionStore[Any], statement: Callable[[str, str], str], params: Any = ()
) -> list[tuple[Any, ...]]:
    """Run `statement(balances, statement)` on the accounts version that serves readers."""
    # The active version and its tables in one transaction: a switch between the two reads
    # cannot send this query to a version that is being retired.
    with store.transaction() as connection:
        tables = accounts_tables(ACCOUNTS.active(connection))
        return execute_sql(connection, statement(*tables), params)


# --8<-- [end:blue-green-reader]


@attrs.frozen
class Views:
    """Reads the read models."""

    store: SubscriptionStore[Any]

    def balances(self) -> list[tuple[str, str, str, Decimal, str]]:
        """Every account: id, owner, currency, balance, status."""
        rows = self._accounts(
            lambda balances, _: (
                f"SELECT account, owner, currency, balance, status FROM {balances} ORDER BY account"
            )
        )
        return [(a, o, c, Decimal(b), s) for a, o, c, b, s in rows]

    def statement(self, account: str) -> list[tuple[int, str, str, Decimal, Decimal]]:
        """An account's movements: version, time, description, amount, balance after."""
        rows = self._accounts(
            lambda _, statement: (
                "SELECT version, recorded_at, description, amount, balance "
                f"FROM {statement} WHERE account = %s ORDER BY version"
            ),
            account,
        )
        return [(v, t, d, Decimal(a), Decimal(b)) for v, t, d, a, b in rows]

    def counterparties(self, account: str) -> list[tuple[int, str]]:
        """An account's movements: version and the other account of a transfer (or "").

        v2's column: while v1 still serves readers, every counterparty reads as "".
        """
        with self.store.transaction() as connection:
            version = ACCOUNTS.active(connection)
            _, statement = accounts_tables(version)
            column = "counterparty" if _COUNTERPARTY[version] else "''"
            rows = execute_sql(
                connection,
                f"SELECT version, {column} FROM {statement} WHERE account = %s ORDER BY version",
                (account,),
            )
        return [(v, c) for v, c in rows]

    def transfers(self) -> list[tuple[str, str, str, Decimal, str, str, str]]:
        """Every transfer: id, source, destination, amount, currency, status, reason."""
        rows = self._query(
            "SELECT transfer, source, destination, amount, currency, status, reason "
            "FROM bank_transfers ORDER BY transfer"
        )
        return [(t, s, d, Decimal(a), c, st, r) for t, s, d, a, c, st, r in rows]

    def _accounts(
        self, statement: Callable[[str, str], str], *params: Any
    ) -> list[tuple[Any, ...]]:
        return read_accounts(self.store, statement, params)

    def _query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.store.transaction() as connection:
            return execute_sql(connection, statement, params)
