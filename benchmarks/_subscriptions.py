"""esframework's subscriptions on PostgreSQL: catch-up rate and live latency.

These have no peer figure: they are measured against esframework's own `catchup` (the store
read alone), so the ratio shows what the subscription machinery costs.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from _esframework_side import BenchAccount, Deposited, open_store
from _writers import WriterPool, WriterSpec

from esframework import (
    Envelope,
    Repository,
    Subscription,
    SubscriptionWorker,
    emit,
    new,
)
from esframework.postgres import PostgresEventStore

__all__ = ["catchup_rate", "live_latency_ms", "live_latency_while_writing_ms"]


def catchup_rate(store: PostgresEventStore, events: int, *, read_model: bool) -> float:
    """Deliver the first `events` stored events to a new subscription; events/s.

    With `read_model`, the handler upserts a balance row per event (in the subscription's
    transaction, as a projection does); otherwise it does nothing.
    """
    table = f'"{store.schema}".bench_balances'
    if read_model:
        with store.transaction() as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (account TEXT PRIMARY KEY, balance NUMERIC)"
            )
    delivered = 0
    worker: SubscriptionWorker[Any]

    def handle(envelope: Envelope[Any], connection: Any) -> None:
        nonlocal delivered
        delivered += 1
        if read_model:
            connection.execute(
                f"INSERT INTO {table} (account, balance) VALUES (%s, %s) ON CONFLICT (account) "
                f"DO UPDATE SET balance = {table}.balance + excluded.balance",
                (envelope.stream_id, envelope.event.amount),
            )
        if delivered == events:
            worker.stopper.set()

    worker = SubscriptionWorker(
        store,
        Subscription(name=f"bench-{uuid.uuid4()}", handler=handle, batch_size=1000),
    )
    start = time.perf_counter()
    worker.run(until_caught_up=True)
    elapsed = time.perf_counter() - start
    assert delivered >= events, f"delivered {delivered} of {events}"
    return delivered / elapsed


def live_latency_ms(store: PostgresEventStore, samples: int) -> tuple[float, float]:
    """Append one event at a time to a live subscription; p50 and p99 of append-to-handler ms."""
    repository = Repository(BenchAccount, store=store)
    awaited = ""  # the stream of the event being timed; other writers' events are ignored
    received = 0.0
    arrived = threading.Event()

    def handle(envelope: Envelope[Any], _: Any) -> None:
        nonlocal received
        if envelope.stream_id == awaited:
            received = time.perf_counter()
            arrived.set()

    worker = SubscriptionWorker(
        store,
        Subscription(
            name=f"bench-live-{uuid.uuid4()}", handler=handle, start="end", poll_interval=5.0
        ),
    )
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()
    time.sleep(0.5)  # let it take its lease and start listening
    latencies: list[float] = []
    try:
        for _ in range(samples):
            awaited = f"live-{uuid.uuid4()}"
            account = new(BenchAccount, awaited)
            emit(account, Deposited(amount=Decimal("1.00"), note="live"))
            arrived.clear()
            sent = time.perf_counter()
            repository.save(account)
            if not arrived.wait(10):
                msg = "a live event did not arrive within 10 s"
                raise RuntimeError(msg)
            latencies.append((received - sent) * 1000)
            time.sleep(0.005)
    finally:
        worker.stopper.set()
        running.join(10)
    quantiles = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), quantiles[98]


def live_latency_while_writing_ms(
    pool: WriterPool, specs: list[WriterSpec], dsn: str, schema: str, samples: int
) -> tuple[float, float]:
    """`live_latency_ms` while `specs`' writers append to the same schema, through a store on
    `dsn` (with the writers' session settings, so the timed saves commit like theirs)."""
    with open_store(dsn, schema, migrate=False) as store, pool.running(specs):
        return live_latency_ms(store, samples)
