"""A runner holds its subscriptions' leases on one session and listens on one connection.

Counted on the server (`pg_stat_activity`), with a store pool of one connection so that the
pool cannot grow under the count; standbys count too, and a hung holder's runner loses every
lease to a standby runner within the bound.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from esframework import (
    AsyncRepository,
    AsyncRunner,
    AsyncSubscription,
    Envelope,
    Repository,
    Runner,
    Subscription,
)
from esframework.postgres import AsyncPostgresEventStore, PostgresEventStore
from tests.domain import Wallet

NAMES = ("one", "two", "three")
GUARD = 60.0  # seconds: only so that a broken runner fails the test instead of hanging it


def wait_for(condition: Callable[[], bool], timeout: float = GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Server:
    """What the server sees of one schema's connections, from a connection of its own."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.name = f"esframework:{schema}"[:63]

    def connections(self) -> int:
        """This schema's connections, but the store's sequencer: it starts on its own time."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND query NOT LIKE '%%esframework_sequence%%'",
                (self.name,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def sequencing(self) -> bool:
        """Whether the store's sequencer has run, so that `connections` leaves it out."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND query LIKE '%%esframework_sequence%%'",
                (self.name,),
            ).fetchone()
        return row is not None and int(row[0]) > 0

    def lease_holders(self) -> Counter[int]:
        """Advisory locks held, by backend pid, among this schema's connections."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
                (self.name,),
            ).fetchall()
        return Counter(int(row[0]) for row in rows)


def subscriptions(seen: Counter[str], block: threading.Event | None = None) -> list[Any]:
    def handler(name: str) -> Callable[[Envelope[Any], Any], None]:
        def handle(envelope: Envelope[Any], _connection: Any) -> None:
            if block is not None and name == "two" and envelope.position > 2:
                block.wait(GUARD)  # a handler stuck on a call without a timeout
            seen[name] += 1

        return handle

    return [Subscription(name=n, handler=handler(n), lease_interval=0.1) for n in NAMES]


def deposit(store: PostgresEventStore, stream: str) -> None:
    wallet = Wallet.open(stream, "owner")
    wallet.add(Decimal(1))
    Repository(Wallet, store=store).save(wallet)


def test_a_runner_holds_one_lease_session_and_one_listener(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    schema = postgres_store.schema
    server = Server(postgres_dsn, schema)
    before = server.connections()  # the fixture's own store
    store = PostgresEventStore(postgres_dsn, schema=schema, min_size=1, max_size=1)
    seen: Counter[str] = Counter()
    active = Runner(store, subscriptions(seen))
    standby = Runner(store, subscriptions(Counter()))
    threads = [threading.Thread(target=r.run, daemon=True) for r in (active, standby)]
    try:
        deposit(store, "before")
        wait_for(server.sequencing)
        baseline = server.connections()  # the pool, and whatever else the store keeps open
        threads[0].start()
        wait_for(lambda: all(seen[n] == 2 for n in NAMES))
        wait_for(lambda: server.connections() == baseline + 2)
        assert list(server.lease_holders().values()) == [3]  # three leases, one session
        threads[1].start()
        time.sleep(1.0)  # standby attempts, every 0.1 s each, through this second
        assert server.connections() == baseline + 3  # the standby runner: one session
        deposit(store, "live")  # woken through the shared listener, all three
        wait_for(lambda: all(seen[n] == 4 for n in NAMES))
        assert server.connections() == baseline + 3
    finally:
        active.stop()
        standby.stop()
        for thread in threads:
            if thread.is_alive():
                thread.join(GUARD)
        store.close()
    wait_for(lambda: server.connections() == before)  # the runners closed theirs


def test_a_hung_holder_releases_every_lease_of_its_runner(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    schema = postgres_store.schema
    server = Server(postgres_dsn, schema)
    store = PostgresEventStore(postgres_dsn, schema=schema, lease_timeout=1.0)
    block = threading.Event()
    hung_seen: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    hung = Runner(store, subscriptions(hung_seen, block))
    standby = Runner(store, subscriptions(seen))
    threads = [threading.Thread(target=r.run, daemon=True) for r in (hung, standby)]
    try:
        deposit(store, "before")
        threads[0].start()
        wait_for(lambda: all(hung_seen[n] == 2 for n in NAMES))
        threads[1].start()
        first = server.lease_holders()
        assert list(first.values()) == [3]
        deposit(store, "stuck")  # subscription "two" of the first runner hangs on it
        # The hung runner's session ends with every lease on it, not only the stuck one's;
        # its healthy workers may take theirs back on a new session, the stuck one cannot.
        (stuck_pid,) = first
        wait_for(lambda: stuck_pid not in server.lease_holders())
        wait_for(lambda: seen["two"] == 2)  # the standby delivered what the hung one holds
        assert hung_seen["two"] == 2  # the stuck event never counted for the hung runner
        assert sum(server.lease_holders().values()) == 3
    finally:
        block.set()
        hung.stop()
        standby.stop()
        for thread in threads:
            thread.join(GUARD)
        store.close()
    with PostgresEventStore(postgres_dsn, schema=schema) as check:
        assert all(check.load_checkpoint(n) == 4 for n in NAMES)


def test_an_async_runner_holds_one_lease_session_and_one_listener(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    schema = postgres_store.schema
    server = Server(postgres_dsn, schema)

    async def scenario() -> None:
        seen: Counter[str] = Counter()

        def handler(name: str) -> Callable[[Envelope[Any], Any], Any]:
            async def handle(_envelope: Envelope[Any], _connection: Any) -> None:
                seen[name] += 1

            return handle

        async def until(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + GUARD
            while not condition():
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.05)

        async def connections() -> int:
            return await asyncio.to_thread(server.connections)

        async with AsyncPostgresEventStore(
            postgres_dsn, schema=schema, min_size=1, max_size=1
        ) as store:
            repository = AsyncRepository(Wallet, store=store)
            wallet = Wallet.open("before", "owner")
            wallet.add(Decimal(1))
            await repository.save(wallet)
            await until(server.sequencing)
            baseline = await connections()
            runner = AsyncRunner(
                store,
                [AsyncSubscription(name=n, handler=handler(n), lease_interval=0.1) for n in NAMES],
            )
            task = asyncio.create_task(runner.run(handle_signals=False))
            await until(lambda: all(seen[n] == 2 for n in NAMES))
            deadline = time.monotonic() + GUARD
            while await connections() != baseline + 2:
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.05)
            holders = await asyncio.to_thread(server.lease_holders)
            assert list(holders.values()) == [3]
            wallet = Wallet.open("live", "owner")
            wallet.add(Decimal(1))
            await repository.save(wallet)
            await until(lambda: all(seen[n] == 4 for n in NAMES))
            assert await connections() == baseline + 2
            runner.stop()
            await asyncio.wait_for(task, GUARD)

    asyncio.run(scenario())
