"""PostgreSQL-only subscription behaviour: the gap test and lost connections."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg
import pytest

from esframework import Envelope, Subscription, SubscriptionWorker, event
from esframework.postgres import PostgresEventStore
from esframework.postgres._connection_setup import application_name
from tests.postgres.test_global_order import append_in_transaction, events
from tests.subscriptions.projector import BalanceProjection, create_table
from tests.subscriptions.test_processes import Site, expected, projected, wait_for, write


@event(name="Tick")  # what tests.postgres.test_global_order.events() appends
class Tick:
    n: int


@pytest.mark.parametrize("run", range(3))
def test_gap_subscription_sees_late_commit_exactly_once(
    postgres_store: PostgresEventStore, run: int
) -> None:
    """Writers append concurrently while one transaction holds its insert open for a second;
    a live subscription delivers every event exactly once, in ascending position."""
    rng = random.Random(run)
    delivered: list[Envelope[Any]] = []
    worker = SubscriptionWorker(
        postgres_store,
        Subscription(
            name="gap", handler=lambda e, _: delivered.append(e), batch_size=25, poll_interval=0.1
        ),
    )
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()

    def writer(stream_id: str) -> None:
        version = 0
        for _ in range(30):
            batch = events(rng.randint(1, 3))
            version = postgres_store.append(
                stream_id, "Gap", batch, expected_version=version
            ).version

    def slow_writer() -> None:
        time.sleep(0.05)
        append_in_transaction(postgres_store, "slow", events(2), 0, hold=1.0)

    threads = [threading.Thread(target=writer, args=(f"s{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=slow_writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = postgres_store.read_all(limit=100_000)
    wait_for(lambda: len(delivered) >= len(stored), timeout=30)
    worker.stopper.set()
    running.join(10)
    assert [e.event_id for e in delivered] == [e.event_id for e in stored]
    assert any(e.stream_id == "slow" for e in delivered)


def test_lost_connections_lose_and_double_nothing(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """Terminating the worker's connections mid-run: it reconnects and the projection equals
    a replay, with every event applied once."""
    site = Site(postgres_store, [], f'"{postgres_store.schema}".proj_balances')
    with postgres_store.transaction() as connection:
        create_table(connection, site.table)
    write(site, wallets=30, deposits=20)
    worker = SubscriptionWorker(
        postgres_store,
        Subscription(
            name="balances",
            handler=BalanceProjection(site.table, "%s"),
            batch_size=10,
            poll_interval=0.1,
        ),
    )
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()
    head = postgres_store.head()
    for fraction in (4, 2):
        wait_for(lambda f=fraction: site.checkpoint() >= head // f)
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(  # only this test's store: its connections carry its schema's name
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (application_name(postgres_store.schema),),
            )
    wait_for(lambda: site.checkpoint() == head, timeout=60)
    worker.stopper.set()
    running.join(10)
    assert projected(site) == expected(site)
