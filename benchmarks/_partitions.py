"""Partitioned subscriptions: catch-up of a read-model projection with 1, 2 and 4 partitions.

Each partition runs in a process of its own (started, connected and ready before the clock
starts); the figure is the events caught up per second of wall time, from the start signal
until every partition's process has delivered every event. Every partition reads the whole
global order and handles its own streams' events, so the ratios show what sharing the
handling gains once each partition pays for the full read.

    python benchmarks/_partitions.py [--quick] [--sqlite] [--dsn DSN]

runs it alone (on SQLite too, where the partitions' transactions take turns on the one
writer); `run.py --only partitions` runs it with the other PostgreSQL scenarios.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from esframework import (
    Envelope,
    Repository,
    SQLiteEventStore,
    Subscription,
    SubscriptionStore,
    SubscriptionWorker,
    emit,
    new,
    partitioned,
)

__all__ = ["COUNTS", "on_postgres", "partition_rates", "ratios"]

COUNTS = (1, 2, 4)
EVENTS_PER_STREAM = 100
TABLE = "bench_partition_balances"
HERE = Path(__file__).resolve().parent


def _open(spec: list[str]) -> tuple[SubscriptionStore[Any], str, str]:
    """The store, the read model's table and the placeholder, from `sqlite PATH` or
    `postgres DSN SCHEMA`."""
    if spec[0] == "sqlite":
        return SQLiteEventStore(spec[1]), TABLE, "?"
    from _esframework_side import open_store

    return open_store(spec[1], spec[2], migrate=False), f'"{spec[2]}".{TABLE}', "%s"


def _write(store: SubscriptionStore[Any], events: int) -> None:
    from _esframework_side import BenchAccount, Deposited

    repository = Repository(BenchAccount, store=store)
    for first in range(0, events, EVENTS_PER_STREAM):
        account = new(BenchAccount, f"partition-bench-{uuid.uuid4()}")
        for _ in range(min(EVENTS_PER_STREAM, events - first)):
            emit(account, Deposited(amount=Decimal("1.00"), note="bench"))
        repository.save(account)


def _create_table(store: SubscriptionStore[Any], table: str, *, fresh: bool) -> None:
    with store.transaction() as connection:
        if fresh:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (account TEXT PRIMARY KEY, balance NUMERIC)"
        )


def worker_main(arguments: list[str]) -> None:
    """One partition's process: connect, say "ready", wait for "go", catch up, exit."""
    import _esframework_side  # noqa: F401 -- registers the event classes

    name, count, index, *spec = arguments
    store, table, p = _open(spec)

    def handle(envelope: Envelope[Any], connection: Any) -> None:
        connection.execute(
            f"INSERT INTO {table} (account, balance) VALUES ({p}, {p}) ON CONFLICT (account) "
            f"DO UPDATE SET balance = {table}.balance + excluded.balance",
            (envelope.stream_id, str(envelope.event.amount)),
        )

    subscription = Subscription(name=name, handler=handle, batch_size=1000)
    (part,) = partitioned(subscription, int(count), indexes=[int(index)])
    worker = SubscriptionWorker(store, part, report_every=3600)
    store.head()  # connected before the clock starts
    print("ready", flush=True)
    sys.stdin.readline()
    worker.run(until_caught_up=True)
    store.close()


def _catch_up(spec: list[str], count: int, events: int) -> float:
    """Start `count` partition processes, time their catch-up; events/s."""
    name = f"bench-{uuid.uuid4().hex[:12]}"
    processes = [
        subprocess.Popen(  # noqa: S603 -- our own script, with our arguments
            [sys.executable, __file__, "worker", name, str(count), str(index), *spec],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    used = _children_cpu()
    start = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(timeout=3600) == 0, "a partition process failed"
    elapsed = time.perf_counter() - start
    # The workers' CPU time (from their start: connecting is a small part) against the wall
    # time says whether they waited for cores or for the database.
    print(
        f"  {count} partition(s): {events / elapsed:,.0f} events/s, {elapsed:.1f} s; the "
        f"partition processes used {_children_cpu() - used:.1f} CPU-seconds",
        file=sys.stderr,
        flush=True,
    )
    return events / elapsed


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def partition_rates(spec: list[str], events: int, *, rounds: int = 1) -> dict[str, float]:
    """Write `events` events in streams of 100, then catch a read model up with 1, 2 and 4
    partitions, alternating the order each round (best of the rounds); events/s each."""
    store, table, _ = _open(spec)
    try:
        _write(store, events)
        best: dict[str, float] = {}
        for r in range(rounds):
            order = COUNTS if r % 2 == 0 else tuple(reversed(COUNTS))
            for count in order:
                _create_table(store, table, fresh=True)
                rate = _catch_up(spec, count, events)
                with store.transaction() as connection:
                    cursor = connection.execute(f"SELECT count(*), sum(balance) FROM {table}")
                    streams, total = cursor.fetchone()
                assert int(total) == events, f"{count} partition(s) projected {total} of {events}"
                assert streams == -(-events // EVENTS_PER_STREAM)
                key = f"partitions{count}"
                best[key] = max(best.get(key, 0.0), rate)
        return best
    finally:
        store.close()


def on_postgres(dsn: str, events: int, *, rounds: int = 1) -> dict[str, float]:
    """`partition_rates` in a schema of its own, created for the run and dropped after it."""
    from _common import drop_schema, recreate_schema
    from _esframework_side import open_store

    schema = f"bench_partitions_{uuid.uuid4().hex[:8]}"
    recreate_schema(dsn, schema)
    try:
        open_store(dsn, schema).close()  # creates the store's tables
        return partition_rates(["postgres", dsn, schema], events, rounds=rounds)
    finally:
        drop_schema(dsn, schema)


def ratios(rates: dict[str, float]) -> dict[str, float]:
    """Each count's rate over the 1-partition rate."""
    one = rates[f"partitions{COUNTS[0]}"]
    return {f"{count}/1": rates[f"partitions{count}"] / one for count in COUNTS[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events, not 100,000")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    events = 10_000 if args.quick else 100_000
    if args.sqlite:
        with tempfile.TemporaryDirectory() as directory:
            spec = ["sqlite", str(Path(directory) / "events.db")]
            rates = partition_rates(spec, events, rounds=args.rounds)
    else:
        rates = on_postgres(args.dsn, events, rounds=args.rounds)
    for name, rate in rates.items():
        print(f"{name}: {rate:,.0f} events/s")
    for name, ratio in ratios(rates).items():
        print(f"{name} partitions: {ratio:.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(sys.argv[2:])
    else:
        main()
