"""Real worker processes: killed with SIGKILL, competing for a lease, stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esframework import Repository, SQLiteEventStore, SubscriptionStore
from tests.domain import Wallet
from tests.subscriptions.projector import TABLE

ROOT = Path(__file__).parents[2]


class Site:
    """A store the projector processes share, and how to start them on it."""

    def __init__(self, store: SubscriptionStore[Any], arguments: list[str], table: str) -> None:
        self.store = store
        self.arguments = arguments
        self.table = table

    def start(self, *extra: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.subscriptions.projector", *self.arguments, *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        return process

    def rows(self) -> dict[str, tuple[int, int, int]]:
        try:
            with self.store.transaction() as connection:
                cursor = connection.execute(
                    f"SELECT wallet, balance, events, handled_by FROM {self.table}"
                )
                return {wallet: (b, e, h) for wallet, b, e, h in cursor.fetchall()}
        except Exception:  # the table is created by the first projector
            return {}

    def checkpoint(self) -> int:
        return self.store.load_checkpoint("balances") or 0


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


def write(site: Site, wallets: int, deposits: int, prefix: str = "w") -> None:
    repository = Repository(Wallet, store=site.store)
    for i in range(wallets):
        wallet = Wallet.open(f"{prefix}{i}", "owner")
        for _ in range(deposits):
            wallet.add(Decimal(1))
        repository.save(wallet)


def expected(site: Site) -> dict[str, tuple[int, int]]:
    """The read model a replay from scratch builds: balance and event count per wallet."""
    balance: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for record in site.store.iter_all():
        events[record.stream_id] += 1
        if record.event_type == "TestMoneyAdded":
            balance[record.stream_id] += 1
    return {wallet: (balance[wallet], events[wallet]) for wallet in events}


def projected(site: Site) -> dict[str, tuple[int, int]]:
    return {wallet: (b, e) for wallet, (b, e, _) in site.rows().items()}


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def kill_9(process: subprocess.Popen[str]) -> None:
    process.kill()
    finish(process)


def test_kill_9_mid_run_then_restart_equals_replay(site: Site) -> None:
    """SIGKILL mid-run and a restart: the read model equals a replay from scratch."""
    write(site, wallets=40, deposits=24)  # 1,000 events
    head = site.store.head()
    process = site.start()
    wait_for(lambda: site.checkpoint() > head // 4)
    kill_9(process)
    killed_at = site.checkpoint()
    assert 0 < killed_at < head, "the kill must land mid-run"
    restarted = site.start("--until-caught-up")
    finish(restarted)
    assert restarted.returncode == 0
    assert site.checkpoint() == head
    assert projected(site) == expected(site)


def test_one_active_instance_and_takeover_when_it_dies(site: Site) -> None:
    """Two processes run one subscription: one works; when it dies the other takes over."""
    write(site, wallets=5, deposits=3, prefix="a")
    first, second = site.start(), site.start()
    wait_for(lambda: site.checkpoint() == site.store.head())
    handlers = {h for _, _, h in site.rows().values()}
    assert len(handlers) == 1, "two instances processed events at once"
    (active,) = handlers
    standby = second if active == first.pid else first
    write(site, wallets=5, deposits=3, prefix="b")
    wait_for(lambda: site.checkpoint() == site.store.head())
    assert {h for _, _, h in site.rows().values()} == {active}
    kill_9(first if active == first.pid else second)
    write(site, wallets=5, deposits=3, prefix="c")
    wait_for(lambda: site.checkpoint() == site.store.head(), timeout=30)
    rows = site.rows()
    assert {rows[f"c{i}"][2] for i in range(5)} == {standby.pid}
    assert projected(site) == expected(site)
    standby.send_signal(signal.SIGTERM)
    finish(standby)
    assert standby.returncode == 0


def test_sigterm_stops_cleanly_with_the_checkpoint_in_step(site: Site) -> None:
    """SIGTERM mid-run: the worker finishes its event, exits 0, read model and checkpoint agree."""
    write(site, wallets=20, deposits=24)
    process = site.start()
    wait_for(lambda: site.checkpoint() > 0)
    process.send_signal(signal.SIGTERM)
    output = finish(process)
    assert process.returncode == 0, output
    assert "stopped cleanly" in output
    stopped_at = site.checkpoint()
    handled = sum(events for _, events in projected(site).values())
    assert handled == sum(1 for e in site.store.iter_all() if e.position <= stopped_at)
