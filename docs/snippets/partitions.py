"""A projection run as 3 partitions, then re-partitioned as 2: `python docs/snippets/partitions.py`.

In production each partition (or each process's share of them) runs in its own process; here
they run one after another in one process, to show what each step does.
"""
# ruff: noqa: INP001, T201

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from esframework import (
    Envelope,
    Repository,
    Runner,
    SQLiteEventStore,
    Subscription,
    partitioned,
    rebuild_partitions,
)
from esframework.errors import PartitionCountError
from examples.bank.domain import Account, MoneyDeposited


class Deposits:
    """A read model: how much was deposited into each account."""

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        if isinstance(envelope.event, MoneyDeposited):
            connection.execute(
                "INSERT INTO deposits (account, total) VALUES (?, ?) ON CONFLICT (account) "
                "DO UPDATE SET total = total + excluded.total",
                (envelope.stream_id, int(envelope.event.amount)),
            )

    def reset(self, connection: Any) -> None:
        connection.execute("DELETE FROM deposits")


def main(directory: Path) -> None:
    store = SQLiteEventStore(directory / "bank.db")
    with store.transaction() as connection:
        connection.execute("CREATE TABLE deposits (account TEXT PRIMARY KEY, total INTEGER)")
    accounts = Repository(Account, store=store)
    for i in range(10):
        account = Account.open(f"account-{i}", owner="ann", currency="EUR")
        account.deposit(Decimal(i + 1))
        accounts.save(account)

    # --8<-- [start:run]
    deposits = Subscription(name="deposits", handler=Deposits())
    # Partition k of 3 is the subscription "deposits:k/3", with its own lease and checkpoint.
    # Every process may run all three (whoever holds a partition's lease runs it), or only
    # its own: partitioned(deposits, 3, indexes=[k]).
    runner = Runner(store, partitioned(deposits, 3))
    runner.run_until_caught_up()  # in production: runner.run(), in each process
    # --8<-- [end:run]
    with store.transaction() as connection:
        [(total,)] = connection.execute("SELECT sum(total) FROM deposits").fetchall()
    print("deposited:", total)  # 55: every event once, whichever partition had it

    # --8<-- [start:count]
    try:
        Runner(store, partitioned(deposits, 2)).run_until_caught_up()
    except PartitionCountError as error:
        print(error)  # runs as 3 partition(s), but this worker is configured with 2 ...
    # With every worker stopped: reset the read model and every checkpoint at once, record
    # the new count, and replay.
    rebuild_partitions(store, partitioned(deposits, 2))
    Runner(store, partitioned(deposits, 2)).run_until_caught_up()  # 2 is the count now
    # --8<-- [end:count]
    with store.transaction() as connection:
        [(total,)] = connection.execute("SELECT sum(total) FROM deposits").fetchall()
    print("deposited after rebuilding as 2 partitions:", total)
    store.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(Path(directory))
