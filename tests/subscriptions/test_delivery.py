"""Subscriptions deliver every event once per handler, in global order, with projections'
effects committed together with their checkpoints."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from esframework import Envelope, SubscriptionError
from tests.domain import MoneyAdded, Wallet, WalletOpened
from tests.subscriptions.conftest import Harness, Sql


def balances(harness: Harness) -> tuple[Any, Any]:
    """Create a balances table; return a projection into it and its reset."""
    table = harness.table("balances")
    harness.query(f"CREATE TABLE {table} (wallet TEXT PRIMARY KEY, balance TEXT NOT NULL)")

    def project(envelope: Envelope[Any], sql: Sql) -> None:
        event = envelope.event
        if isinstance(event, WalletOpened):
            sql(f"INSERT INTO {table} (wallet, balance) VALUES (?, '0')", envelope.stream_id)
        elif isinstance(event, MoneyAdded):
            # Decimal arithmetic differs between databases: the tests add whole amounts.
            sql(
                f"UPDATE {table} SET balance = CAST(CAST(balance AS INTEGER) + ? AS TEXT) "
                "WHERE wallet = ?",
                int(event.amount),
                envelope.stream_id,
            )

    def reset(sql: Sql) -> None:
        sql(f"DELETE FROM {table}")

    return project, reset


def save_wallets(harness: Harness, count: int, deposits: int = 2) -> None:
    wallets = harness.repository(Wallet)
    for i in range(count):
        wallet = Wallet.open(f"w{i}", f"owner {i}")
        for amount in range(1, deposits + 1):
            wallet.add(Decimal(amount))
        wallets.save(wallet)


def record_into(seen: list[Envelope[Any]]) -> Any:
    def handle(envelope: Envelope[Any], _: Sql) -> None:
        seen.append(envelope)

    return handle


def test_catches_up_in_global_order_from_the_start(harness: Harness) -> None:
    """A new subscription delivers every stored event once, in ascending position."""
    save_wallets(harness, 5)
    seen: list[Envelope[Any]] = []
    harness.worker(record_into(seen), batch_size=4).run(until_caught_up=True)
    assert [e.position for e in seen] == [e.position for e in harness.store.read_all()]
    assert len(seen) == 15
    assert isinstance(seen[0].event, WalletOpened)


def test_resumes_from_its_durable_checkpoint(harness: Harness) -> None:
    """A restarted subscription continues after the last event it handled."""
    save_wallets(harness, 2)
    first: list[Envelope[Any]] = []
    harness.worker(record_into(first)).run(until_caught_up=True)
    save_wallets_after = harness.repository(Wallet)
    wallet = save_wallets_after.load("w0")
    wallet.add(Decimal(7))
    save_wallets_after.save(wallet)
    second: list[Envelope[Any]] = []
    harness.worker(record_into(second)).run(until_caught_up=True)
    assert len(first) == 6
    assert [e.event for e in second] == [MoneyAdded(amount=Decimal(7), note="")]


def test_start_at_the_end_skips_history(harness: Harness) -> None:
    """A new subscription that starts at the end sees only later events."""
    save_wallets(harness, 2)
    seen: list[Envelope[Any]] = []
    harness.worker(record_into(seen), start="end").run(until_caught_up=True)
    assert seen == []
    save_wallets_later = harness.repository(Wallet)
    save_wallets_later.save(Wallet.open("late", "Eve"))
    harness.worker(record_into(seen), start="end").run(until_caught_up=True)
    assert [e.stream_id for e in seen] == ["late"]


def test_filters_by_stream_type_and_event_class(harness: Harness) -> None:
    """Filters deliver only matching events, and the checkpoint still moves past the rest."""
    save_wallets(harness, 3)
    opened: list[Envelope[Any]] = []
    worker = harness.worker(record_into(opened), event_types=[WalletOpened])
    worker.run(until_caught_up=True)
    assert [e.stream_id for e in opened] == ["w0", "w1", "w2"]
    assert harness.store.load_checkpoint("test") == harness.store.head()
    other: list[Envelope[Any]] = []
    harness.worker(record_into(other), name="other", stream_types=["Elsewhere"]).run(
        until_caught_up=True
    )
    assert other == []


def test_projection_commits_read_model_with_checkpoint(harness: Harness) -> None:
    """A projection's rows and its checkpoint are written in the same transaction."""
    project, reset = balances(harness)
    save_wallets(harness, 3, deposits=3)
    harness.worker(project, reset=reset, batch_size=5).run(until_caught_up=True)
    rows = harness.query(f"SELECT wallet, balance FROM {harness.table('balances')} ORDER BY 1")
    assert rows == [("w0", "6"), ("w1", "6"), ("w2", "6")]
    assert harness.store.load_checkpoint("test") == harness.store.head()


def test_rebuild_resets_and_replays_reporting_progress(harness: Harness) -> None:
    """Rebuilding a projection empties its read model and replays every event into it."""
    project, reset = balances(harness)
    table = harness.table("balances")
    save_wallets(harness, 4)
    worker = harness.worker(project, reset=reset, batch_size=3)
    worker.run(until_caught_up=True)
    harness.query(f"UPDATE {table} SET balance = 'garbage'")
    reports: list[tuple[int, int]] = []
    worker.rebuild(on_progress=lambda p: reports.append((p.position, p.head)))
    assert harness.query(f"SELECT DISTINCT balance FROM {table}") == [("3",)]
    assert reports
    assert reports[-1][0] == harness.store.head()
    assert [position for position, _ in reports] == sorted(position for position, _ in reports)


def test_failing_handler_is_retried_then_succeeds(harness: Harness) -> None:
    """A handler that fails a few times on an event is retried with backoff, then delivers."""
    save_wallets(harness, 1)
    failures = {"left": 2}
    seen: list[Envelope[Any]] = []

    def flaky(envelope: Envelope[Any], _: Sql) -> None:
        if envelope.version == 2 and failures["left"]:
            failures["left"] -= 1
            message = "temporary trouble"
            raise RuntimeError(message)
        seen.append(envelope)

    harness.worker(flaky, max_attempts=5).run(until_caught_up=True)
    # Effects outside the transaction are at-least-once: the failed batch had already
    # delivered version 1 once before it rolled back.
    versions = [e.version for e in seen]
    assert list(dict.fromkeys(versions)) == [1, 2, 3]
    assert versions.count(2) == 1
    assert failures["left"] == 0


def test_persistent_failure_stops_before_the_event(harness: Harness) -> None:
    """After max_attempts it stops, naming the event; the checkpoint stays before it."""
    project, _ = balances(harness)
    save_wallets(harness, 2)
    poison = harness.store.read_all()[4]  # w1's first deposit

    def broken(envelope: Envelope[Any], sql: Sql) -> None:
        if envelope.position == poison.position:
            message = "cannot handle this one"
            raise ValueError(message)
        project(envelope, sql)

    with pytest.raises(SubscriptionError) as caught:
        harness.worker(broken, max_attempts=3).run(until_caught_up=True)
    error = caught.value
    assert (error.subscription, error.position, error.stream_id, error.attempts) == (
        "test",
        poison.position,
        poison.stream_id,
        3,
    )
    assert error.event_type == poison.event_type
    assert harness.store.load_checkpoint("test") == poison.position - 1
    # Everything before the poison event was committed, nothing after it.
    assert harness.query(f"SELECT wallet, balance FROM {harness.table('balances')} ORDER BY 1") == [
        ("w0", "3"),
        ("w1", "0"),
    ]


def test_dead_letter_parks_the_event_and_moves_on(harness: Harness) -> None:
    """With dead letters on, a poison event is parked; fixing the handler and retrying
    delivers it. (Skipping ahead: `test_parking` covers the stream's later events.)"""
    save_wallets(harness, 2)
    poison = harness.store.read_all()[1]
    broken = {"yes": True}
    seen: list[int] = []

    def handle(envelope: Envelope[Any], _: Sql) -> None:
        if envelope.position == poison.position and broken["yes"]:
            message = "poison"
            raise ValueError(message)
        seen.append(envelope.position)

    worker = harness.worker(handle, max_attempts=2, dead_letter=True, on_poison="skip")
    worker.run(until_caught_up=True)
    assert poison.position not in seen
    assert len(set(seen)) == 5  # at least once each: the failed batch had delivered some
    (parked,) = harness.store.parked("test")
    assert (parked.position, parked.event_id, parked.stream_id) == (
        poison.position,
        poison.event_id,
        poison.stream_id,
    )
    assert "poison" in parked.error
    broken["yes"] = False
    assert worker.retry_parked() == []
    assert poison.position in seen
    assert harness.store.parked("test") == []


def test_undecodable_event_is_a_handler_failure(harness: Harness) -> None:
    """An event nobody can decode stops the subscription like a failing handler."""
    import uuid

    from esframework import NewEvent

    harness.store.append(
        "x",
        "Mystery",
        [NewEvent(event_id=uuid.uuid4(), event_type="NoSuchEvent", schema_version=1, data="{}")],
        expected_version=0,
    )
    with pytest.raises(SubscriptionError, match="NoSuchEvent") as caught:
        harness.worker(record_into([]), max_attempts=1).run(until_caught_up=True)
    assert "UnknownEventTypeError" in repr(caught.value.__cause__)


def test_live_delivery_of_new_events(harness: Harness) -> None:
    """A caught-up subscription delivers events appended while it runs."""
    seen: list[Envelope[Any]] = []
    arrived = threading.Event()

    def handle(envelope: Envelope[Any], _: Sql) -> None:
        seen.append(envelope)
        if len(seen) == 3:
            arrived.set()

    # With PostgreSQL, a poll interval of a minute leaves only NOTIFY to wake the worker.
    poll = 60.0 if harness.on_postgres else 0.2
    worker = harness.worker(handle, poll_interval=poll)
    done = run_in_thread(worker)
    time.sleep(0.3)  # let it catch up and start waiting
    save_wallets(harness, 1)
    assert arrived.wait(20), "the live event never arrived"
    worker.stopper.set()
    done.wait(70)
    assert [e.version for e in seen] == [1, 2, 3]


def test_stop_finishes_cleanly_and_keeps_the_checkpoint(harness: Harness) -> None:
    """Stopping mid-stream ends the run; the checkpoint matches what was handled."""
    save_wallets(harness, 10)
    handled: list[int] = []

    def slow(envelope: Envelope[Any], _: Sql) -> None:
        handled.append(envelope.position)
        if len(handled) == 5:
            worker.stopper.set()

    worker = harness.worker(slow, batch_size=1)
    worker.run()
    checkpoint = harness.store.load_checkpoint("test")
    assert handled[:5] == [e.position for e in harness.store.read_all(limit=5)]
    assert checkpoint == handled[-1]


def test_pages_stay_bounded_when_the_handler_is_slow(harness: Harness) -> None:
    """Reading never asks for more than a batch, however far behind the handler is."""
    save_wallets(harness, 20)
    limits: list[int] = []
    store = harness.raw
    original = store.read_all

    if harness.is_async:

        async def spy(**kwargs: Any) -> Any:
            limits.append(kwargs["limit"])
            return await original(**kwargs)

    else:

        def spy(**kwargs: Any) -> Any:  # type: ignore[misc]
            limits.append(kwargs["limit"])
            return original(**kwargs)

    store.read_all = spy
    try:
        harness.worker(lambda _e, _sql: time.sleep(0.001), batch_size=7).run(until_caught_up=True)
    finally:
        del store.read_all
    assert limits
    assert max(limits) == 7


def run_in_thread(worker: Any) -> threading.Event:
    done = threading.Event()

    def run() -> None:
        try:
            worker.run()
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_stopping_during_retries_keeps_the_event(harness: Harness) -> None:
    """A stop while a failing event waits for its next attempt neither parks it nor skips
    it: the checkpoint stays before it."""
    save_wallets(harness, 1)
    target = harness.store.read_all()[1]
    calls = 0

    def failing(envelope: Envelope[Any], _: Sql) -> None:
        nonlocal calls
        if envelope.position == target.position:
            calls += 1
            if calls == 2:
                worker.stopper.set()
            message = "still failing"
            raise RuntimeError(message)

    worker = harness.worker(failing, max_attempts=10, retry_delay=0.05, dead_letter=True)
    worker.run()
    assert harness.store.parked("test") == []
    assert harness.store.load_checkpoint("test") == target.position - 1


def test_a_stale_checkpoint_write_is_refused(harness: Harness) -> None:
    """Moving a checkpoint from a position it no longer has fails: the write of an instance
    that lost its lease cannot commit over another's."""
    from esframework.errors import LeaseLostError

    save_wallets(harness, 1)
    harness.worker(record_into([])).run(until_caught_up=True)
    head = harness.store.head()
    lease = harness.store.lease("test")
    for previous in (None, 1, head - 1):
        with pytest.raises(LeaseLostError), harness.store.transaction() as connection:
            harness.store.save_checkpoint(connection, "test", head + 5, lease, previous=previous)
    assert harness.store.load_checkpoint("test") == head
    with harness.store.transaction() as connection:
        harness.store.save_checkpoint(connection, "test", head, lease, previous=head)


def test_subscription_names_must_fit_the_store() -> None:
    """A subscription name the checkpoint table cannot hold is refused at once."""
    from esframework import Subscription

    with pytest.raises(ValueError, match="subscription names"):
        Subscription(name="x" * 256, handler=record_into([]))
