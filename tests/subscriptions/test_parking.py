"""Parked events and per-stream order: with `on_poison="park_stream"` (the default) a
stream's later events wait, parked behind its parked event, until it is resolved; with
`"skip"` they are applied without it."""

from __future__ import annotations

import itertools
import logging
import threading
from decimal import Decimal
from typing import Any

import pytest

from esframework import Envelope
from esframework.errors import StoreError
from tests.domain import Wallet
from tests.subscriptions.conftest import Harness, Sql
from tests.subscriptions.test_delivery import run_in_thread, save_wallets
from tests.subscriptions.test_processes import wait_for


def applied_table(harness: Harness) -> str:
    table = harness.table("applied")
    harness.query(f"CREATE TABLE {table} (n INTEGER PRIMARY KEY, stream TEXT, version INTEGER)")
    return table


def applied(harness: Harness, table: str, stream: str) -> list[int]:
    rows = harness.query(f"SELECT version FROM {table} WHERE stream = ? ORDER BY n", stream)
    return [row[0] for row in rows]


def poisoned(table: str, broken: dict[str, bool]) -> Any:
    """A projection that records the order it applies events in, failing on w0's version 2
    while `broken["yes"]`."""
    order = itertools.count(1)  # the order applied in (rolled-back batches leave gaps)

    def handle(envelope: Envelope[Any], sql: Sql) -> None:
        if (envelope.stream_id, envelope.version) == ("w0", 2) and broken["yes"]:
            message = "poison"
            raise ValueError(message)
        sql(
            f"INSERT INTO {table} (n, stream, version) VALUES (?, ?, ?)",
            next(order),
            envelope.stream_id,
            envelope.version,
        )

    return handle


def deposit(harness: Harness, stream: str, amount: int) -> None:
    wallets = harness.repository(Wallet)
    wallet = wallets.load(stream)
    wallet.add(Decimal(amount))
    wallets.save(wallet)


def test_later_events_of_the_stream_wait_behind_a_parked_one(harness: Harness) -> None:
    """w0's version 2 is parked; its version 3, and version 4 appended later, are parked
    behind it, unapplied, while w1 goes on. Once fixed, a retry applies 2, 3, 4 in order."""
    table = applied_table(harness)
    save_wallets(harness, 2)
    broken = {"yes": True}
    worker = harness.worker(poisoned(table, broken), max_attempts=1, dead_letter=True)
    worker.run(until_caught_up=True)
    deposit(harness, "w0", 3)
    deposit(harness, "w1", 3)
    worker.run(until_caught_up=True)
    assert applied(harness, table, "w0") == [1]
    assert applied(harness, table, "w1") == [1, 2, 3, 4]
    parked = harness.store.parked("test")
    assert [(p.stream_id, p.position) for p in parked] == [
        ("w0", e.position) for e in list(harness.store.read_stream("w0"))[1:]
    ]
    assert "poison" in parked[0].error
    assert all("behind" in p.error for p in parked[1:])
    assert harness.store.load_checkpoint("test") == harness.store.head()

    assert [p.position for p in worker.retry_parked()] == [p.position for p in parked]
    assert applied(harness, table, "w0") == [1]  # still failing: nothing jumps the queue
    broken["yes"] = False
    assert worker.retry_parked() == []
    assert applied(harness, table, "w0") == [1, 2, 3, 4]
    assert harness.store.parked("test") == []
    deposit(harness, "w0", 5)
    worker.run(until_caught_up=True)  # resolved: the stream flows again
    assert applied(harness, table, "w0") == [1, 2, 3, 4, 5]


def test_dropping_the_parked_event_replays_those_behind_it(harness: Harness) -> None:
    table = applied_table(harness)
    save_wallets(harness, 1, deposits=3)
    worker = harness.worker(poisoned(table, {"yes": True}), max_attempts=1, dead_letter=True)
    worker.run(until_caught_up=True)
    first, *behind = harness.store.parked("test")
    assert len(behind) == 2
    with pytest.raises(ValueError, match="no event parked"):
        worker.drop_parked(first.position + 1000)
    assert worker.drop_parked(first.position) == []
    assert applied(harness, table, "w0") == [1, 3, 4]
    assert harness.store.parked("test") == []


def test_skip_applies_later_events_without_the_parked_one(harness: Harness) -> None:
    table = applied_table(harness)
    save_wallets(harness, 1)
    broken = {"yes": True}
    worker = harness.worker(
        poisoned(table, broken), max_attempts=1, dead_letter=True, on_poison="skip"
    )
    worker.run(until_caught_up=True)
    (parked,) = harness.store.parked("test")
    assert parked.stream_id == "w0"
    assert applied(harness, table, "w0") == [1, 3]
    broken["yes"] = False
    assert worker.retry_parked() == []
    assert applied(harness, table, "w0") == [1, 3, 2]


def test_parked_is_logged_only_once_the_park_committed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The dead-letter table is gone: parking fails, the run ends with the store's error,
    the checkpoint stays before the event, and nothing says it was parked."""
    table = applied_table(harness)
    save_wallets(harness, 1)
    harness.query(
        f"ALTER TABLE {harness.table('subscription_dead_letters')} RENAME TO dead_letters_gone"
    )
    worker = harness.worker(
        poisoned(table, {"yes": True}),
        max_attempts=1,
        dead_letter=True,
        on_poison="skip",
    )
    with caplog.at_level(logging.INFO, logger="esframework"), pytest.raises(StoreError):
        worker.run(until_caught_up=True)
    poison = list(harness.store.read_stream("w0"))[1]
    assert harness.store.load_checkpoint("test") == poison.position - 1
    assert not [r for r in caplog.records if "parked" in r.getMessage()]


def test_a_retry_beside_the_running_worker_leaves_nothing_behind(harness: Harness) -> None:
    """The worker runs live and parks w0's new deposits behind its poison event while an
    operator's retry (another worker object) resolves the stream: every event of w0 ends
    applied, in order, and nothing stays parked."""
    table = applied_table(harness)
    save_wallets(harness, 2)
    broken = {"yes": True}
    handle = poisoned(table, broken)
    worker = harness.worker(handle, max_attempts=1, dead_letter=True)
    done = run_in_thread(worker)
    try:
        wait_for(lambda: len(harness.store.parked("test")) == 2)

        def write() -> None:
            for amount in range(3, 23):
                deposit(harness, "w0", amount)

        writer = threading.Thread(target=write)
        writer.start()
        broken["yes"] = False
        harness.worker(handle, max_attempts=1, dead_letter=True).retry_parked()
        writer.join()
        wait_for(lambda: harness.store.load_checkpoint("test") == harness.store.head())
    finally:
        worker.stopper.set()
        assert done.wait(30)
    assert harness.store.parked("test") == []
    assert applied(harness, table, "w0") == list(range(1, 24))
