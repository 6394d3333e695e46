"""The application the command-line tests point the commands at (`--app tests.cli.app`).

`runner()` builds its store from the environment, as an operator's worker module would:
ESFRAMEWORK_CLI_DB (an SQLite file), or ESFRAMEWORK_CLI_DSN and ESFRAMEWORK_CLI_SCHEMA.
"""

from __future__ import annotations

import os
import time
from typing import Any

from esframework import (
    Envelope,
    Runner,
    SnapshotPolicy,
    SQLiteEventStore,
    Subscription,
    aggregate,
    applies,
    emit,
    event,
    new,
    upcaster,
)


@event(name="CliOpened")
class Opened:
    owner: str


@event(name="CliDeposited", version=2)
class Deposited:
    amount: int
    currency: str


@upcaster("CliDeposited", from_version=1)
def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


@aggregate(stream_type="CliAccount", snapshots=SnapshotPolicy(every=3))
class Account:
    owner: str = ""
    balance: int = 0

    @classmethod
    def open(cls, account_id: str, owner: str) -> Account:
        account = new(cls, account_id)
        emit(account, Opened(owner=owner))
        return account

    def deposit(self, amount: int) -> None:
        emit(self, Deposited(amount=amount, currency="EUR"))

    @applies(Opened)
    def _opened(self, e: Opened) -> None:
        self.owner = e.owner

    @applies(Deposited)
    def _deposited(self, e: Deposited) -> None:
        self.balance += e.amount


class Totals:
    """A projection: the deposits of each account; a deposit of 13 always fails."""

    def __init__(self, postgres: bool, schema: str) -> None:
        self._table = f'"{schema}".cli_totals' if postgres else "cli_totals"
        self._mark = "%s" if postgres else "?"

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        if not isinstance(envelope.event, Deposited):
            return
        time.sleep(float(os.environ.get("ESFRAMEWORK_CLI_SLOW", "0")))  # a slow read model
        if envelope.event.amount == 13:
            msg = "thirteen is unlucky"
            raise ValueError(msg)
        self._create(connection)
        m = self._mark
        connection.execute(
            f"INSERT INTO {self._table} (stream_id, total) VALUES ({m}, {m}) "
            "ON CONFLICT (stream_id) DO UPDATE SET total = "
            f"{self._table}.total + excluded.total",
            (envelope.stream_id, envelope.event.amount),
        )

    def reset(self, connection: Any) -> None:
        self._create(connection)
        connection.execute(f"DELETE FROM {self._table}")

    def _create(self, connection: Any) -> None:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (stream_id TEXT PRIMARY KEY, total INTEGER)"
        )


def runner() -> Runner[Any]:
    store: Any
    path = os.environ.get("ESFRAMEWORK_CLI_DB")
    schema = os.environ.get("ESFRAMEWORK_CLI_SCHEMA", "public")
    if path:
        store = SQLiteEventStore(path)
    else:
        from esframework.postgres import PostgresEventStore

        store = PostgresEventStore(os.environ["ESFRAMEWORK_CLI_DSN"], schema=schema)
    totals = Subscription[Any](
        name="totals",
        handler=Totals(postgres=not path, schema=schema),
        dead_letter=True,
        max_attempts=1,
        retry_delay=0.0,
        batch_size=10,
    )
    return Runner(store, [totals])
