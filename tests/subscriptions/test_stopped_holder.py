"""A lease holder that stops making progress (SIGSTOP) is replaced, and commits nothing after.

A stopped process keeps its connections and file locks (the kernel still answers for it), so
neither a dropped connection, TCP keepalives nor a released file lock free its lease. On
PostgreSQL the lease session's server-side timeout does; on SQLite the lease row's expiry.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from esframework import Envelope, Repository, SQLiteEventStore, Subscription, SubscriptionWorker
from esframework.errors import LeaseLostError
from esframework.postgres import PostgresEventStore
from tests.domain import Wallet
from tests.subscriptions.projector import TABLE
from tests.subscriptions.test_processes import (
    ROOT,
    Site,
    expected,
    finish,
    projected,
    wait_for,
    write,
)

LEASE_TIMEOUT = 1.0  # short, so the test is fast; the default is 20 s
GUARD = 60.0  # seconds: only so that a broken lease fails the test instead of hanging it


class Checkpoints:
    """Every checkpoint the test saw, to show it never went back."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.seen: list[int] = []

    def at_head(self) -> bool:
        self.seen.append(self.site.checkpoint())
        return self.seen[-1] == self.site.store.head()

    def past(self, position: int) -> bool:
        self.seen.append(self.site.checkpoint())
        return self.seen[-1] > position


@pytest.fixture
def site(postgres_store: PostgresEventStore, postgres_dsn: str) -> Site:
    schema = postgres_store.schema
    return Site(postgres_store, ["postgres", postgres_dsn, schema], f'"{schema}".{TABLE}')


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        yield Site(store, ["sqlite", str(path)], TABLE)


def start(site: Site, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.subscriptions.pausable",
            *site.arguments,
            str(LEASE_TIMEOUT),
            mode,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    return process


def handlers(site: Site, prefix: str) -> set[int]:
    return {h for wallet, (_, _, h) in site.rows().items() if wallet.startswith(prefix)}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stopped_holder_is_replaced_and_commits_nothing_when_it_wakes(
    site: Site, mode: str
) -> None:
    write(site, wallets=20, deposits=29, prefix="a")  # 600 events: some seconds of work
    checkpoints = Checkpoints(site)
    holder = start(site, mode)
    wait_for(lambda: checkpoints.past(0))  # it holds the lease
    standby = start(site, mode)
    try:
        holder.send_signal(signal.SIGSTOP)  # most likely mid-batch, its transaction open
        stopped_at = site.checkpoint()
        assert stopped_at < site.store.head(), "the holder must stop mid-run"
        # The standby takes over and catches up while the holder is still stopped.
        wait_for(checkpoints.at_head, timeout=30)
        assert standby.pid in handlers(site, "a")
        holder.send_signal(signal.SIGCONT)
        write(site, wallets=5, deposits=3, prefix="b")
        wait_for(checkpoints.at_head, timeout=30)
        assert handlers(site, "b") == {standby.pid}, "the woken holder delivered events"
    finally:
        holder.send_signal(signal.SIGCONT)
        for process in (holder, standby):
            process.send_signal(signal.SIGTERM)
        outputs = [finish(process) for process in (holder, standby)]
    # Whatever the woken holder had in hand rolled back: no event was applied twice.
    assert projected(site) == expected(site)
    assert checkpoints.seen == sorted(checkpoints.seen), "the checkpoint went back"
    # It noticed: its lease was gone, or the server had ended its session and the batch with it.
    assert "has no lease" in outputs[0] or "connection was lost" in outputs[0], outputs[0]
    assert holder.returncode == 0, outputs[0]
    assert standby.returncode == 0, outputs[1]


def stop_outside_a_transaction(path: str, process: subprocess.Popen[str]) -> None:
    """SIGSTOP `process` at a moment it holds no SQLite write lock.

    Stopped inside a write transaction, a holder blocks every writer of the file, and no
    lease can help with that: this test is about the holder stopped while it waits.
    """
    for _ in range(100):
        process.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            process.send_signal(signal.SIGCONT)
        else:
            return
        finally:
            probe.close()
    pytest.fail("the worker always held the write lock")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stopped_sqlite_holder_is_replaced_and_commits_nothing_when_it_wakes(
    sqlite_site: Site, mode: str
) -> None:
    site = sqlite_site
    write(site, wallets=3, deposits=3, prefix="a")
    checkpoints = Checkpoints(site)
    holder = start(site, mode)
    wait_for(checkpoints.at_head)
    standby = start(site, mode)
    try:
        stop_outside_a_transaction(site.arguments[1], holder)
        write(site, wallets=5, deposits=3, prefix="b")
        wait_for(checkpoints.at_head, timeout=30)
        assert handlers(site, "b") == {standby.pid}
        holder.send_signal(signal.SIGCONT)
        write(site, wallets=5, deposits=3, prefix="c")
        wait_for(checkpoints.at_head, timeout=30)
        assert handlers(site, "c") == {standby.pid}, "the woken holder delivered events"
    finally:
        holder.send_signal(signal.SIGCONT)
        for process in (holder, standby):
            process.send_signal(signal.SIGTERM)
        outputs = [finish(process) for process in (holder, standby)]
    assert projected(site) == expected(site)
    assert checkpoints.seen == sorted(checkpoints.seen), "the checkpoint went back"
    assert "has no lease" in outputs[0], outputs[0]
    assert holder.returncode == 0, outputs[0]
    assert standby.returncode == 0, outputs[1]


def test_a_lease_not_renewed_is_ended_by_the_server_and_fences_its_holder(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """The lease runs on the server's clock: a holder that renews nothing loses it."""
    store = PostgresEventStore(postgres_dsn, schema=postgres_store.schema, lease_timeout=0.3)
    holder, standby = store.lease("clock"), store.lease("clock")
    try:
        assert holder.acquire()
        assert not standby.acquire()
        wait_for(standby.acquire, timeout=30)
        # The old holder, waking: its checkpoint write is refused, its renewal fails.
        with pytest.raises(LeaseLostError), store.transaction() as connection:
            store.save_checkpoint(connection, "clock", 1, holder, previous=None)
        assert store.load_checkpoint("clock") is None
        with pytest.raises(LeaseLostError, match="session ended"):
            holder.renew()
        with store.transaction() as connection:
            store.save_checkpoint(connection, "clock", 1, standby, previous=None)
        assert store.load_checkpoint("clock") == 1
    finally:
        holder.release()
        standby.release()
        store.close()


def test_a_holder_that_renews_keeps_its_lease(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    store = PostgresEventStore(postgres_dsn, schema=postgres_store.schema, lease_timeout=0.3)
    holder, standby = store.lease("kept"), store.lease("kept")
    try:
        assert holder.acquire()
        for _ in range(10):  # well past the timeout, renewing as a working holder does
            time.sleep(holder.renew_every)
            holder.renew()
            assert not standby.acquire()
    finally:
        holder.release()
        standby.release()
        store.close()


def test_a_holder_blocked_in_its_handler_is_replaced(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """A handler stuck on a call without a timeout stops the renewals, not just the events:
    the lease is renewed by the worker's progress, never by a thread that would go on."""
    schema = postgres_store.schema
    table = f'"{schema}".blocked_seen'
    wallets = Repository(Wallet, store=postgres_store)
    wallets.save(Wallet.open("w1", "owner"))
    with postgres_store.transaction() as connection:
        connection.execute(f"CREATE TABLE {table} (position bigint, worker text)")
    stuck, unstick = threading.Event(), threading.Event()

    def handler(name: str) -> Callable[[Envelope[Any], Any], None]:
        def handle(envelope: Envelope[Any], connection: Any) -> None:
            connection.execute(f"INSERT INTO {table} VALUES (%s, %s)", (envelope.position, name))
            if name == "blocked":
                stuck.set()
                unstick.wait(GUARD)  # a call that never returns, until the test lets it

        return handle

    stores = [
        PostgresEventStore(postgres_dsn, schema=schema, lease_timeout=LEASE_TIMEOUT)
        for _ in range(2)
    ]
    workers = [
        SubscriptionWorker(
            store,
            Subscription(name="blocked", handler=handler(name), lease_interval=0.05),
        )
        for store, name in zip(stores, ["blocked", "standby"], strict=True)
    ]
    failures: list[BaseException] = []

    def run(worker: SubscriptionWorker[Any]) -> None:
        try:
            worker.run()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(workers[0],), daemon=True)]
    threads[0].start()
    try:
        assert stuck.wait(GUARD)
        threads.append(threading.Thread(target=run, args=(workers[1],), daemon=True))
        threads[1].start()
        wait_for(lambda: postgres_store.load_checkpoint("blocked") == postgres_store.head())
        unstick.set()
        wallets.save(Wallet.open("w2", "owner"))
        wait_for(lambda: postgres_store.load_checkpoint("blocked") == postgres_store.head())
    finally:
        unstick.set()
        for worker, thread in zip(workers, threads, strict=False):
            worker.stopper.set()
            thread.join(GUARD)
        for store in stores:
            store.close()
    assert failures == [], "a worker stopped instead of going back to waiting for the lease"
    with postgres_store.transaction() as connection:
        committed = connection.execute(f"SELECT position, worker FROM {table}").fetchall()
    # The blocked holder's insert rolled back with its batch; the standby applied each once.
    positions = [e.position for e in postgres_store.iter_all()]
    assert sorted(committed) == [(position, "standby") for position in positions]


def test_an_expired_sqlite_lease_is_taken_over_and_fences_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteEventStore(path, lease_timeout=0.3) as first, SQLiteEventStore(path) as second:
        holder, standby = first.lease("clock"), second.lease("clock")
        try:
            assert holder.acquire()
            assert not standby.acquire()  # the file is locked and the lease fresh
            wait_for(standby.acquire, timeout=30)  # the file still locked: the row expired
            with pytest.raises(LeaseLostError), first.transaction() as connection:
                first.save_checkpoint(connection, "clock", 1, holder, previous=None)
            assert first.load_checkpoint("clock") is None
            with pytest.raises(LeaseLostError, match="expired"):
                holder.renew()
            with second.transaction() as connection:
                second.save_checkpoint(connection, "clock", 1, standby, previous=None)
            assert second.load_checkpoint("clock") == 1
            assert not holder.acquire()  # the woken holder waits like any standby
        finally:
            holder.release()
            standby.release()
