"""A new subscription started at once unpartitioned and partitioned: only one layout runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from esframework import (
    Envelope,
    Repository,
    Subscription,
    SubscriptionWorker,
    execute_sql,
    partitioned,
)
from esframework.errors import PartitionCountError
from esframework.postgres import PostgresEventStore
from tests.domain import Wallet


def handler(envelope: Envelope[Any], connection: Any) -> None:
    execute_sql(connection, "INSERT INTO applied (event_id) VALUES (%s)", (str(envelope.event_id),))


def waiting_for_a_lock(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE %s",
            (f"%{schema}%subscription_checkpoints%",),
        ).fetchall()
    return bool(rows[0][0])


def test_an_unpartitioned_and_a_partitioned_first_start_never_both_run(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """Process A starts the subscription unpartitioned: its count check finds nothing
    recorded, and it goes on to write its first checkpoint. Meanwhile process B starts it
    as 2 partitions: its check finds neither a count nor A's checkpoint (not committed yet),
    records 2 and delivers every event. A's checkpoint then commits and A delivers every
    event again, into the same read model. One of the two must refuse to start."""
    store, schema = postgres_store, postgres_store.schema
    with store.transaction() as connection:
        execute_sql(connection, "CREATE TABLE applied (event_id TEXT NOT NULL)")
    repository = Repository(Wallet, store=store)
    for n in range(6):
        repository.save(Wallet.open(f"w-{n}", owner="o"))
    subscription = Subscription(name="proj", handler=handler, lease_interval=0.05)
    refused: list[Exception] = []

    def run(worker: SubscriptionWorker[Any]) -> None:
        try:
            worker.run(until_caught_up=True)
        except PartitionCountError as error:
            refused.append(error)

    # A's first checkpoint write waits behind this uncommitted row: the moment between A's
    # count check and its checkpoint's commit, held open.
    with psycopg.connect(postgres_dsn) as blocker:
        blocker.execute(
            f'INSERT INTO "{schema}".subscription_checkpoints '
            "(subscription_id, last_position, updated_at) VALUES ('proj', 0, now())"
        )
        a = threading.Thread(target=run, args=(SubscriptionWorker(store, subscription),))
        a.start()
        deadline = time.monotonic() + 20
        while not waiting_for_a_lock(postgres_dsn, schema):
            assert time.monotonic() < deadline, "A never reached its first checkpoint"
            assert a.is_alive(), refused
            time.sleep(0.02)
        for part in partitioned(subscription, 2):
            run(SubscriptionWorker(store, part))
        blocker.rollback()
    a.join(timeout=30)
    assert not a.is_alive()
    with store.transaction() as connection:
        applied = execute_sql(connection, "SELECT event_id FROM applied")
    assert len(applied) == len({row[0] for row in applied}), (
        f"events applied twice: {len(applied)} rows for {len({r[0] for r in applied})} "
        f"events; refused: {refused}"
    )
    assert refused
