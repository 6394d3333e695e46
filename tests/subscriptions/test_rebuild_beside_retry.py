"""A rebuild while a retry of a parked event is in flight applies that event once (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from typing import Any

from esframework import (
    Envelope,
    Repository,
    Subscription,
    SubscriptionWorker,
    execute_sql,
)
from esframework.postgres import PostgresEventStore
from tests.domain import Wallet


class Applied:
    """Records each event it is given; fails on `poison` while `failing`, sleeps on it
    while `slow` (having set `started`)."""

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.failing = True
        self.slow = False
        self.started = threading.Event()

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        if envelope.stream_id == self.poison:
            if self.failing:
                raise RuntimeError("poison")
            if self.slow:
                self.started.set()
                time.sleep(1.0)
        execute_sql(
            connection, "INSERT INTO applied (event_id) VALUES (%s)", (str(envelope.event_id),)
        )

    def reset(self, connection: Any) -> None:
        execute_sql(connection, "DELETE FROM applied")


def test_a_rebuild_during_a_retry_applies_the_retried_event_once(
    postgres_store: PostgresEventStore,
) -> None:
    """The retry takes the parked event off the list and applies it in one transaction;
    the rebuild empties the read model, drops the parked events and replays. Emptied first,
    the read model kept the retry's row, which committed while the rebuild waited to drop
    the entry the retry held: the replay then applied the event a second time."""
    store = postgres_store
    with store.transaction() as connection:
        execute_sql(connection, "CREATE TABLE applied (event_id TEXT NOT NULL)")
    repository = Repository(Wallet, store=store)
    for n in range(4):
        repository.save(Wallet.open(f"w-{n}", owner="o"))
    projection = Applied("w-1")
    subscription = Subscription(
        name="applied", handler=projection, dead_letter=True, max_attempts=1, lease_interval=0.05
    )
    SubscriptionWorker(store, subscription).run(until_caught_up=True)
    assert [p.stream_id for p in store.parked("applied")] == ["w-1"]

    projection.failing, projection.slow = False, True
    still: list[Any] = []
    retry = threading.Thread(
        target=lambda: still.extend(SubscriptionWorker(store, subscription).retry_parked())
    )
    retry.start()
    assert projection.started.wait(10)
    projection.slow = False
    SubscriptionWorker(store, subscription).rebuild()
    retry.join(10)
    assert not retry.is_alive()
    assert still == []
    with store.transaction() as connection:
        applied = [row[0] for row in execute_sql(connection, "SELECT event_id FROM applied")]
    assert sorted(applied) == sorted({*applied}), f"applied twice: {applied}"
    assert len(applied) == 4
    assert store.parked("applied") == []
