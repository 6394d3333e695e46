"""Partitions in real processes: one killed with SIGKILL, a standby taking over its lease."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esframework import Partition, Repository, SQLiteEventStore, SubscriptionStore
from tests.domain import Wallet
from tests.subscriptions.partition_projector import TABLE, create_table
from tests.subscriptions.test_processes import finish, kill_9, wait_for

ROOT = Path(__file__).parents[2]


class Site:
    def __init__(self, store: SubscriptionStore[Any], arguments: list[str], table: str) -> None:
        self.store = store
        self.arguments = arguments
        self.table = table

    def start(self, count: int, indexes: str) -> subprocess.Popen[str]:
        module = "tests.subscriptions.partition_projector"
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(count), indexes, *self.arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        return process

    def rows(self) -> list[tuple[int, str, int, int]]:
        with self.store.transaction() as connection:
            cursor = connection.execute(
                f"SELECT position, stream_id, version, pid FROM {self.table} ORDER BY seq"
            )
            return [(p, s, v, pid) for p, s, v, pid in cursor.fetchall()]

    def checkpoint(self, index: int) -> int | None:
        return self.store.load_checkpoint(f"balances:{index}/2")


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "sqlite":
        path = tmp_path / "events.db"
        with SQLiteEventStore(path) as store:
            yield Site(store, ["sqlite", str(path)], TABLE)
    else:
        store = request.getfixturevalue("postgres_store")
        dsn = request.getfixturevalue("postgres_dsn")
        yield Site(store, ["postgres", dsn, store.schema], f'"{store.schema}".{TABLE}')


def create(site: Site) -> None:
    # Here, not in the workers: on SQLite a late worker's DDL would queue behind the batches.
    with site.store.transaction() as connection:
        create_table(connection, site.table, postgres=site.arguments[0] == "postgres")


def test_partition_killed_mid_run_a_standby_takes_over_every_event_once(site: Site) -> None:
    """Two partitions in two processes and a standby for both; kill -9 partition 0's process.

    The standby takes partition 0's lease and goes on from its checkpoint: in the end every
    event was applied once, each stream in order in its own partition, partition 1 untouched.
    """
    create(site)
    first, second = site.start(2, "0"), site.start(2, "1")
    wait_for(lambda: site.checkpoint(0) is not None and site.checkpoint(1) is not None)
    standby = site.start(2, "0,1")  # both leases are taken: it waits for either
    repository = Repository(Wallet, store=site.store)
    with site.store.transaction():  # 600 events in 60 streams, committed at once
        for i in range(60):
            wallet = Wallet.open(f"w{i}", "owner")
            for _ in range(9):
                wallet.add(Decimal(1))
            repository.save(wallet)
    head = site.store.head()
    wait_for(lambda: (site.checkpoint(0) or 0) > head // 4)
    kill_9(first)
    killed_at = site.checkpoint(0) or 0
    assert killed_at < head, "the kill must land mid-run"
    wait_for(lambda: site.checkpoint(0) == head and site.checkpoint(1) == head)
    rows = site.rows()
    assert sorted(p for p, _, _, _ in rows) == [e.position for e in site.store.iter_all()], (
        "an event was applied twice or skipped"
    )
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version, _ in rows:
        versions[stream].append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values()), "order broken"
    by_part: dict[int, set[int]] = defaultdict(set)
    after_kill: set[int] = set()
    for position, stream, _, pid in rows:
        part = 0 if Partition("balances", 0, 2).owns(stream) else 1
        by_part[part].add(pid)
        if part == 0 and position > killed_at:
            after_kill.add(pid)
    assert by_part[1] == {second.pid}, "the standby took a partition that had a live holder"
    assert by_part[0] == {first.pid, standby.pid}
    assert after_kill == {standby.pid}
    for process in (second, standby):
        process.send_signal(signal.SIGTERM)
        output = finish(process)
        assert process.returncode == 0, output
