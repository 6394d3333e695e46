"""A worker process running some partitions of one subscription, for the takeover tests.

    python -m tests.subscriptions.partition_projector COUNT INDEXES sqlite PATH
    python -m tests.subscriptions.partition_projector COUNT INDEXES postgres DSN SCHEMA

INDEXES is a comma-separated list of the partitions to run (of COUNT). Every event handled
is recorded in `part_applied` (the test creates it) with the process id, slowly enough to
be killed mid-run.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from esframework import Envelope, Runner, Subscription, partitioned
from tests.subscriptions.projector import open_store

TABLE = "part_applied"


def create_table(connection: Any, table: str, *, postgres: bool) -> None:
    serial = "BIGSERIAL" if postgres else "INTEGER"
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (seq {serial} PRIMARY KEY, position BIGINT, "
        "stream_id TEXT, version INTEGER, pid INTEGER)"
    )


def main() -> None:
    count, indexes, *backend = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format=f"{os.getpid()} %(message)s")
    store, _, p = open_store(backend)
    table = TABLE if backend[0] == "sqlite" else f'"{backend[2]}".{TABLE}'

    def handle(envelope: Envelope[Any], connection: Any) -> None:
        time.sleep(0.005)  # slow enough to be killed mid-run
        connection.execute(
            f"INSERT INTO {table} (position, stream_id, version, pid) VALUES ({p}, {p}, {p}, {p})",
            (envelope.position, envelope.stream_id, envelope.version, os.getpid()),
        )

    subscription = Subscription(
        name="balances", handler=handle, batch_size=10, poll_interval=0.2, lease_interval=0.1
    )
    chosen = [int(i) for i in indexes.split(",")]
    runner = Runner(store, partitioned(subscription, int(count), indexes=chosen))
    print("started", flush=True)  # noqa: T201
    runner.run()
    store.close()
    print("stopped cleanly", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
