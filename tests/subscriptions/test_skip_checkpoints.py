"""A filtered subscription moves past the events its filters leave out without a checkpoint
transaction for each: skipped-ahead positions are saved now and then, handled ones at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from esframework import Envelope
from tests.domain import Wallet
from tests.stores.test_contract import make
from tests.subscriptions.conftest import Harness, Sql
from tests.subscriptions.test_delivery import run_in_thread

GUARD = 20.0  # seconds: only a guard against hanging


def count_checkpoint_writes(harness: Harness) -> Callable[[], int]:
    """Count the updates of the checkpoints table with a trigger; return the counter."""
    counter, checkpoints = (
        harness.table("checkpoint_writes"),
        harness.table("subscription_checkpoints"),
    )
    harness.query(f"CREATE TABLE {counter} (n INTEGER NOT NULL)")
    harness.query(f"INSERT INTO {counter} VALUES (0)")
    if harness.on_postgres:
        function = harness.table("count_checkpoint_writes")
        harness.query(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN UPDATE {counter} SET n = n + 1; RETURN NULL; END$$"
        )
        harness.query(
            f"CREATE TRIGGER count_checkpoint_writes AFTER UPDATE ON {checkpoints} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    else:
        harness.query(
            f"CREATE TRIGGER count_checkpoint_writes AFTER UPDATE ON {checkpoints} "
            f"BEGIN UPDATE {counter} SET n = n + 1; END"
        )
    return lambda: int(harness.query(f"SELECT n FROM {counter}")[0][0])


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.01)


def test_skipped_positions_are_saved_now_and_then(harness: Harness) -> None:
    writes = count_checkpoint_writes(harness)
    wallets = harness.repository(Wallet)
    wallets.save(Wallet.open("w", "Ann"))
    handled: list[int] = []

    def record(envelope: Envelope[Any], _: Sql) -> None:
        handled.append(envelope.position)

    worker = harness.worker(
        record,
        stream_types=["TestWallet"],
        skip_checkpoint_positions=10,
        skip_checkpoint_interval=3600.0,
        poll_interval=0.05,
    )
    done = run_in_thread(worker)
    wait_for(lambda: len(handled) == 1)
    first = handled[0]

    def unrelated(count: int) -> None:
        # One append at a time, each seen by the worker: the most checkpoints it could need.
        for _ in range(count):
            harness.store.append(
                f"other-{time.monotonic_ns()}", "Other", make(1), expected_version=0
            )
            head = harness.store.head()
            wait_for(lambda head=head: worker.progress.position >= head)

    unrelated(18)
    wallet = wallets.load("w")
    wallet.add(Decimal(1))
    wallets.save(wallet)
    wanted = harness.store.head()
    wait_for(lambda: worker.progress.position >= wanted)
    assert handled[-1] == wanted
    assert harness.store.load_checkpoint("test") == wanted  # a handled event's: at once
    unrelated(15)
    # 2 handled batches and 1 save per 10 skipped positions, not one per append (35).
    assert 2 <= writes() <= 2 + 33 // 10
    lost = harness.store.load_checkpoint("test")
    assert wanted < lost < harness.store.head()  # the last 5 skips are not saved yet

    worker.stopper.set()
    assert done.wait(GUARD)
    assert harness.store.load_checkpoint("test") == harness.store.head()  # a clean stop saves

    # After a crash the checkpoint is the last one saved: a restart skips those 5 again,
    # and handles nothing twice.
    checkpoints = harness.table("subscription_checkpoints")
    harness.query(
        f"UPDATE {checkpoints} SET last_position = ? WHERE subscription_id = ?", lost, "test"
    )
    harness.worker(record, stream_types=["TestWallet"]).run(until_caught_up=True)
    assert handled == [first, wanted]
    assert harness.store.load_checkpoint("test") == harness.store.head()


def test_an_idle_worker_saves_its_skipped_position_after_the_interval(harness: Harness) -> None:
    writes = count_checkpoint_writes(harness)
    worker = harness.worker(
        lambda _envelope, _sql: None,
        stream_types=["TestWallet"],
        skip_checkpoint_positions=1000,
        skip_checkpoint_interval=0.2,
        poll_interval=0.05,
    )
    done = run_in_thread(worker)
    try:
        for i in range(3):  # each seen on its own: the last comes within the interval
            harness.store.append(f"other-{i}", "Other", make(1), expected_version=0)
            head = harness.store.head()
            wait_for(lambda head=head: worker.progress.position >= head)
        # Far below 1,000 positions: only the interval saves it, while the worker waits.
        wait_for(lambda: harness.store.load_checkpoint("test") == head)
        assert worker.progress.position == head
        assert writes() <= 3
    finally:
        worker.stopper.set()
        assert done.wait(GUARD)
