"""The worker command, and cancelling async workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from esframework import (
    AsyncRepository,
    AsyncSQLiteEventStore,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    SQLiteEventStore,
)
from tests.domain import Wallet

ROOT = Path(__file__).parents[2]


def test_esframework_run_works_until_sigterm(tmp_path: Path) -> None:
    """`esframework run module:runner` delivers events, logs progress, and stops on SIGTERM."""
    db = tmp_path / "events.db"
    with SQLiteEventStore(db) as store:
        wallet = Wallet.open("w", "Ada")
        wallet.add(Decimal(1))
        Repository(Wallet, store=store).save(wallet)
    module = tmp_path / "worker_app.py"
    module.write_text(
        "from esframework import Runner, SQLiteEventStore, Subscription\n"
        "import tests.domain  # registers the events\n"
        f"store = SQLiteEventStore({str(db)!r})\n"
        "def note(envelope, connection):\n"
        "    print('handled', envelope.position, flush=True)\n"
        "runner = Runner(store, [Subscription(name='notes', handler=note)], report_every=0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "esframework._cli", "run", "worker_app:runner"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline(), process.stdout.readline()]
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert [line.strip() for line in lines if "handled" in line] == ["handled 1", "handled 2"]
    assert "received SIGTERM" in output
    with SQLiteEventStore(db) as store:
        assert store.load_checkpoint("notes") == 2


def test_cancelling_an_async_worker_never_commits_half_a_batch(tmp_path: Path) -> None:
    """A task cancelled mid-batch rolls the batch back: the checkpoint never passes an event
    whose effects are not committed, and a restart completes the work exactly once."""
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as sync:
        wallets = Repository(Wallet, store=sync)
        for i in range(30):
            wallets.save(Wallet.open(f"w{i}", "Ada"))
        with sync.transaction() as connection:
            connection.execute("CREATE TABLE seen (position INTEGER PRIMARY KEY)")

    async def slow(envelope: Envelope[Any], connection: Any) -> None:
        connection.execute("INSERT INTO seen (position) VALUES (?)", (envelope.position,))
        await asyncio.sleep(0.01)

    async def run_then_cancel() -> None:
        async with AsyncSQLiteEventStore(path) as store:
            worker = AsyncSubscriptionWorker(
                store, AsyncSubscription(name="seen", handler=slow, batch_size=10)
            )
            task = asyncio.create_task(worker.run())
            for _ in range(1000):  # until the first batch committed: then inside the second
                await asyncio.sleep(0.01)
                if await store.load_checkpoint("seen"):
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            checkpoint = await store.load_checkpoint("seen")
            async with store.transaction() as connection:
                seen = [p for (p,) in connection.execute("SELECT position FROM seen ORDER BY 1")]
            assert checkpoint is not None
            assert 0 < checkpoint < 30
            assert seen == list(range(1, checkpoint + 1))  # effects and checkpoint agree
            await worker.run(until_caught_up=True)
            async with store.transaction() as connection:
                (count,) = connection.execute("SELECT count(*) FROM seen").fetchone()
            assert count == 30

    asyncio.run(run_then_cancel())


def test_other_tasks_never_join_an_async_sqlite_transaction(tmp_path: Path) -> None:
    """While one task's transaction is open, another task's append waits for it instead of
    joining it: rolling the transaction back cannot take an acknowledged append with it."""

    class RolledBackError(Exception):
        pass

    async def scenario() -> None:
        async with AsyncSQLiteEventStore(tmp_path / "events.db") as store:
            repository = AsyncRepository(Wallet, store=store)
            opened = asyncio.Event()

            async def batch_that_fails() -> None:
                with contextlib.suppress(RolledBackError):
                    async with store.transaction():
                        await repository.save(Wallet.open("inside", "Ann"))  # joins: same task
                        opened.set()
                        await asyncio.sleep(0.2)
                        raise RolledBackError

            async def other_request() -> None:
                await opened.wait()
                await repository.save(Wallet.open("outside", "Bob"))

            await asyncio.gather(batch_that_fails(), other_request())
            assert await store.stream_version("outside") == 1
            assert await store.stream_version("inside") == 0

    asyncio.run(scenario())


def test_tasks_started_inside_a_transaction_join_it_only_while_it_is_open(
    tmp_path: Path,
) -> None:
    """A task a handler starts inherits its context, so its calls join the transaction while
    it is open (and roll back with it); once it ended, its calls are its own."""

    class RolledBackError(Exception):
        pass

    async def scenario() -> None:
        async with AsyncSQLiteEventStore(tmp_path / "events.db") as store:
            repository = AsyncRepository(Wallet, store=store)
            ended = asyncio.Event()

            async def save_later() -> None:
                await ended.wait()
                await repository.save(Wallet.open("later", "Sam"))

            background: list[asyncio.Task[Any]] = []
            with contextlib.suppress(RolledBackError):
                async with store.transaction():
                    background.append(asyncio.create_task(save_later()))
                    background.append(
                        asyncio.create_task(repository.save(Wallet.open("joined", "Ann")))
                    )
                    await background[1]
                    raise RolledBackError
            ended.set()
            await background[0]
            assert await store.stream_version("joined") == 0
            assert await store.stream_version("later") == 1

    asyncio.run(scenario())


def test_cancelled_while_beginning_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A task cancelled while its transaction waits for SQLite's write lock leaves nothing
    open: later appends commit for real."""
    import sqlite3

    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as sync:
        sync.head()  # create the file and its tables

    async def scenario() -> None:
        async with AsyncSQLiteEventStore(path, timeout=5) as store:
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock

            async def batch() -> None:
                async with store.transaction():
                    pass

            task = asyncio.create_task(batch())
            await asyncio.sleep(0.2)  # the store's thread now waits for the lock in BEGIN
            task.cancel()
            blocker.execute("ROLLBACK")  # the lock frees: the thread's BEGIN goes through
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await AsyncRepository(Wallet, store=store).save(Wallet.open("after", "Ann"))
            blocker.close()

    asyncio.run(scenario())
    with SQLiteEventStore(path) as reopened:  # committed, not trapped in a transaction
        assert reopened.stream_version("after") == 1
