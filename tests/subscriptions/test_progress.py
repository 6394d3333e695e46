"""Progress reports are values: what a callback got stays as it was, and a rebuild's last
report says it caught up, filtered or not."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from esframework import Envelope, Progress
from tests.domain import WalletOpened
from tests.subscriptions.conftest import Harness, Sql
from tests.subscriptions.test_delivery import balances, save_wallets


def opened_wallets(harness: Harness) -> tuple[Any, Any]:
    """A projection of the opened wallets' names, and its reset."""
    table = harness.table("opened")
    harness.query(f"CREATE TABLE {table} (wallet TEXT PRIMARY KEY)")

    def project(envelope: Envelope[Any], sql: Sql) -> None:
        sql(f"INSERT INTO {table} (wallet) VALUES (?)", envelope.stream_id)

    def reset(sql: Sql) -> None:
        sql(f"DELETE FROM {table}")

    return project, reset


def test_reports_handed_to_the_callback_never_change(harness: Harness) -> None:
    """Each report keeps the values it had when the callback got it, and cannot be changed."""
    project, reset = balances(harness)
    save_wallets(harness, 3)  # 9 events
    worker = harness.worker(project, reset=reset, batch_size=2)
    worker.run(until_caught_up=True)
    reports: list[Progress] = []
    as_handed: list[tuple[Any, ...]] = []

    def keep(progress: Progress) -> None:
        reports.append(progress)
        as_handed.append(attrs.astuple(progress))

    worker.rebuild(on_progress=keep)
    assert [attrs.astuple(report) for report in reports] == as_handed
    assert [report.position for report in reports] == [2, 4, 6, 8, 9, 9]
    assert [report.handled for report in reports] == [2, 4, 6, 8, 9, 9]
    assert [report.caught_up for report in reports] == [False] * 5 + [True]
    field = "position"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(reports[0], field, 0)
    now = worker.progress
    assert (now.position, now.head, now.caught_up) == (9, 9, True)
    assert now is not worker.progress  # every look is a value of its own


def test_a_filtered_rebuild_ends_caught_up_at_the_head(harness: Harness) -> None:
    """A subscription that takes only some events skips ahead to the head: its last report
    is at the head and caught up, though its last event is earlier."""
    project, reset = opened_wallets(harness)
    save_wallets(harness, 3)  # each wallet: opened, then two deposits; head 9
    worker = harness.worker(project, reset=reset, event_types=[WalletOpened], batch_size=2)
    worker.run(until_caught_up=True)
    reports: list[Progress] = []
    worker.rebuild(on_progress=reports.append)
    last = reports[-1]
    head = harness.store.head()
    assert (last.position, last.head, last.caught_up, last.lag) == (head, head, True, 0)
    assert (last.handled, last.parked) == (3, 0)
    assert not any(report.caught_up for report in reports[:-1])
    rows = harness.query(f"SELECT wallet FROM {harness.table('opened')} ORDER BY 1")
    assert rows == [("w0",), ("w1",), ("w2",)]
    assert harness.store.load_checkpoint("test") == head


def test_progress_counts_parked_events_and_is_caught_up_when_done(harness: Harness) -> None:
    """A worker's progress counts what it parked, and says when nothing is left."""
    save_wallets(harness, 2)  # 6 events

    def handle(envelope: Envelope[Any], _: Sql) -> None:
        if envelope.position == 2:
            message = "poison"
            raise ValueError(message)

    worker = harness.worker(handle, max_attempts=1, dead_letter=True, batch_size=10)
    assert not worker.progress.caught_up
    worker.run(until_caught_up=True)
    done = worker.progress
    # The poison and the later event of its stream, parked behind it (on_poison's default).
    assert (done.position, done.head, done.handled, done.parked) == (6, 6, 6, 2)
    assert done.caught_up
    assert done.rate > 0
