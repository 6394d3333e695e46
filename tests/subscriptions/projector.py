"""A projecting worker process for the crash, lease and signal tests.

    python -m tests.subscriptions.projector sqlite PATH [--until-caught-up]
    python -m tests.subscriptions.projector postgres DSN SCHEMA [--until-caught-up]

It projects wallet balances into `proj_balances`, recording which process applied each
event, slowly enough that a test can kill it mid-run.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

from esframework import Envelope, Runner, Subscription, SubscriptionStore
from tests.domain import MoneyAdded, WalletOpened

TABLE = "proj_balances"


class BalanceProjection:
    def __init__(self, table: str, placeholder: str) -> None:
        self._table = table
        self._p = placeholder

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event, p = envelope.event, self._p
        time.sleep(0.0005)  # slow enough to be caught mid-run
        if isinstance(event, WalletOpened):
            connection.execute(
                f"INSERT INTO {self._table} (wallet, balance, events, handled_by) "
                f"VALUES ({p}, 0, 1, {p})",
                (envelope.stream_id, os.getpid()),
            )
        elif isinstance(event, MoneyAdded):
            connection.execute(
                f"UPDATE {self._table} SET balance = balance + {p}, events = events + 1, "
                f"handled_by = {p} WHERE wallet = {p}",
                (int(event.amount), os.getpid(), envelope.stream_id),
            )

    def reset(self, connection: Any) -> None:
        connection.execute(f"DELETE FROM {self._table}")


def create_table(connection: Any, table: str) -> None:
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (wallet TEXT PRIMARY KEY, balance INTEGER NOT NULL, "
        "events INTEGER NOT NULL, handled_by INTEGER NOT NULL)"
    )


def open_store(arguments: list[str]) -> tuple[SubscriptionStore[Any], str, str]:
    """Return the store, the table's qualified name and the placeholder style."""
    if arguments[0] == "sqlite":
        from esframework import SQLiteEventStore

        return SQLiteEventStore(arguments[1]), TABLE, "?"
    from esframework.postgres import PostgresEventStore

    schema = arguments[2]
    return PostgresEventStore(arguments[1], schema=schema), f'"{schema}".{TABLE}', "%s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", nargs="+")
    parser.add_argument("--until-caught-up", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"{os.getpid()} %(message)s")
    store, table, placeholder = open_store(args.backend)
    with store.transaction() as connection:
        create_table(connection, table)
    subscription = Subscription(
        name="balances",
        handler=BalanceProjection(table, placeholder),
        batch_size=20,
        poll_interval=0.2,
        lease_interval=0.1,
    )
    runner = Runner(store, [subscription], report_every=0.5)
    print("started", flush=True)  # noqa: T201
    if args.until_caught_up:
        runner.run_until_caught_up()
    else:
        runner.run()
    store.close()
    print("stopped cleanly", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
