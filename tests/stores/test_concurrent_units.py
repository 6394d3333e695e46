"""Tasks inside one async unit of work (`asyncio.gather`, a `TaskGroup`): their store calls
take turns on the unit's transaction, and commit or roll back with it as one unit."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esframework import (
    AsyncDecisions,
    AsyncRepository,
    ConcurrencyError,
    ExpectedVersion,
    Query,
    QueryItem,
    Repository,
)
from tests.conftest import Backend
from tests.decisions.test_decisions import FullError, Guest, Room, RoomOpened, book
from tests.domain import SnapshottedWallet, Wallet
from tests.stores.test_contract import make

GUARD = 30.0  # seconds: only a guard against hanging
STREAMS = 8

ASYNC_BACKENDS = ["memory-async", "sqlite-async", "postgres-async"]
each_async_store = pytest.mark.parametrize("backend", ASYNC_BACKENDS, indirect=True)


class BoomError(Exception):
    pass


def run(backend: Backend, body: Any) -> Any:
    return backend.loop.run(asyncio.wait_for(body, GUARD))  # type: ignore[union-attr]


def wallets(count: int) -> list[Wallet]:
    found = []
    for n in range(count):
        wallet = Wallet.open(f"w{n}", f"owner {n}")
        wallet.add(Decimal(n))
        found.append(wallet)
    return found


def stored(backend: Backend) -> list[tuple[str, int]]:
    return sorted((e.stream_id, e.version) for e in backend.store.read_all())


@each_async_store
def test_gathered_saves_and_appends_in_a_unit_commit_together(backend: Backend) -> None:
    store = backend.raw

    async def body() -> None:
        repository = AsyncRepository(Wallet, store=store)
        async with store.transaction():
            await asyncio.gather(
                *(repository.save(wallet) for wallet in wallets(STREAMS)),
                *(store.append(f"s{n}", "S", make(2), expected_version=0) for n in range(4)),
            )
            # And the unit reads its own writes from tasks too.
            versions = await asyncio.gather(*(store.stream_version(f"s{n}") for n in range(4)))
            assert versions == [2, 2, 2, 2]

    run(backend, body())
    expected = [(f"w{n}", v) for n in range(STREAMS) for v in (1, 2)]
    assert stored(backend) == sorted(expected + [(f"s{n}", v) for n in range(4) for v in (1, 2)])
    positions = [e.position for e in backend.store.read_all()]
    assert positions == sorted(set(positions))


@each_async_store
def test_gathered_saves_in_a_unit_that_raises_write_nothing(backend: Backend) -> None:
    store = backend.raw

    async def body() -> None:
        repository = AsyncRepository(Wallet, store=store)
        async with store.transaction():
            await asyncio.gather(*(repository.save(wallet) for wallet in wallets(STREAMS)))
            raise BoomError

    with pytest.raises(BoomError):
        run(backend, body())
    assert stored(backend) == []
    backend.store.append("after", "S", make(1), expected_version=0)  # the store is usable
    assert stored(backend) == [("after", 1)]


@each_async_store
def test_a_conflict_in_one_gathered_save_rolls_the_unit_back(backend: Backend) -> None:
    """`gather` raises the first task's error; the block ends with it, and the unit with
    everything the other tasks appended in it."""
    Repository(Wallet, store=backend.store).save(Wallet.open("taken", "first"))
    store = backend.raw

    async def body() -> None:
        repository = AsyncRepository(Wallet, store=store)
        stale = Wallet.open("taken", "second")  # a stream stored already: conflicts
        async with store.transaction():
            await asyncio.gather(
                *(repository.save(wallet) for wallet in wallets(3)),
                repository.save(stale),
                *(repository.save(wallet) for wallet in wallets(STREAMS)[3:]),
            )

    with pytest.raises(ConcurrencyError):
        run(backend, body())
    assert stored(backend) == [("taken", 1)]
    backend.store.append("after", "S", make(1), expected_version=0)
    assert stored(backend) == [("after", 1), ("taken", 1)]


@each_async_store
def test_a_conflict_in_a_task_group_rolls_the_unit_back(backend: Backend) -> None:
    """A TaskGroup cancels the other tasks, in the middle of their calls too, and waits for
    them: then the unit rolls back, and its connection is fit for the next one."""
    Repository(Wallet, store=backend.store).save(Wallet.open("taken", "first"))
    store = backend.raw

    async def body() -> None:
        repository = AsyncRepository(Wallet, store=store)
        stale = Wallet.open("taken", "second")
        async with store.transaction(), asyncio.TaskGroup() as group:
            for wallet in wallets(STREAMS):
                group.create_task(repository.save(wallet))
                if wallet.owner == "owner 2":
                    group.create_task(repository.save(stale))

    with pytest.raises(ExceptionGroup) as raised:
        run(backend, body())
    assert raised.group_contains(ConcurrencyError)
    assert stored(backend) == [("taken", 1)]

    async def again() -> None:  # the next units work, on whichever pooled connection
        for version in range(3):
            async with store.transaction():
                await asyncio.gather(
                    *(
                        store.append(f"s{n}", "S", make(1), expected_version=version)
                        for n in range(3)
                    )
                )

    run(backend, again())
    assert stored(backend) == [(f"s{n}", v) for n in range(3) for v in (1, 2, 3)] + [("taken", 1)]


@each_async_store
def test_a_failed_task_caught_inside_the_unit_leaves_the_others_to_commit(
    backend: Backend,
) -> None:
    """A conflict is a failed append, not a failed unit: with `return_exceptions=True` the
    block goes on, and the unit commits what the other tasks appended."""
    Repository(Wallet, store=backend.store).save(Wallet.open("taken", "first"))
    store = backend.raw

    async def body() -> list[Any]:
        repository = AsyncRepository(Wallet, store=store)
        stale = Wallet.open("taken", "second")
        async with store.transaction():
            return await asyncio.gather(
                *(repository.save(wallet) for wallet in wallets(4)),
                repository.save(stale),
                store.append("direct", "S", make(1), expected_version=0),
                return_exceptions=True,
            )

    results = run(backend, body())
    assert [type(r) for r in results if isinstance(r, BaseException)] == [ConcurrencyError]
    assert stored(backend) == sorted(
        [(f"w{n}", v) for n in range(4) for v in (1, 2)] + [("taken", 1), ("direct", 1)]
    )


@each_async_store
def test_gathered_snapshots_and_reads_in_a_unit(backend: Backend) -> None:
    """Saves that take snapshots, loads and queries, all at once in one unit."""
    store = backend.raw

    def snapshotted(n: int) -> SnapshottedWallet:
        wallet = SnapshottedWallet.open(f"snap{n}", f"owner {n}")
        for _ in range(5):
            wallet.add(Decimal(1))
        return wallet

    async def body(fail: bool) -> None:
        repository = AsyncRepository(SnapshottedWallet, store=store)
        async with store.transaction():
            await asyncio.gather(
                *(repository.save(snapshotted(n), snapshot=True) for n in range(4))
            )
            loaded = await asyncio.gather(*(repository.load(f"snap{n}") for n in range(4)))
            assert [w.balance for w in loaded] == [Decimal(5)] * 4
            results = await asyncio.gather(
                *(
                    store.read_query(Query.of(QueryItem(types=("TestMoneyAdded",))))
                    for _ in range(3)
                )
            )
            assert {len(r.events) for r in results} == {20}
            if fail:
                raise BoomError

    with pytest.raises(BoomError):
        run(backend, body(fail=True))
    assert stored(backend) == []
    assert all(backend.store.load_snapshot(f"snap{n}") is None for n in range(4))
    run(backend, body(fail=False))
    assert all(backend.store.load_snapshot(f"snap{n}") is not None for n in range(4))
    assert len(stored(backend)) == 24


@each_async_store
def test_gathered_decisions_in_a_unit_keep_their_rule(backend: Backend) -> None:
    """Decisions decided at once in one unit see each other: a room of two seats gets two
    bookings, not five, and the refused ones write nothing."""
    store = backend.raw

    async def body() -> list[Any]:
        decisions = AsyncDecisions(store)
        (blank,) = await decisions.read(Room("r1"))
        await decisions.save(blank, events=[RoomOpened(room="r1", seats=2)])
        async with store.transaction():
            return await asyncio.gather(
                *(decisions.decide(book, Room("r1"), Guest(f"g{n}")) for n in range(5)),
                return_exceptions=True,
            )

    results = run(backend, body())
    assert sum(isinstance(r, FullError) for r in results) == 3
    assert all(isinstance(r, FullError) for r in results if isinstance(r, BaseException))
    names = [e.event_type for e in backend.store.read_all()]
    assert names.count("DecisionsSeatBooked") == 2


def test_threads_given_a_sync_units_context_take_turns(postgres_store: Any) -> None:
    """The sync twin: a unit belongs to its thread, but threads run in a copy of its
    context share its connection, and their calls take turns too."""
    store = postgres_store
    failures: list[BaseException] = []

    def save(n: int) -> None:
        try:
            store.append(f"t{n}", "S", make(2), expected_version=0)
            store.append(f"t{n}", "S", make(1), expected_version=ExpectedVersion.ANY)
            with pytest.raises(ConcurrencyError):
                store.append(f"t{n}", "S", make(1), expected_version=0)
        except BaseException as error:
            failures.append(error)

    with store.transaction():
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(save, n))
            for n in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GUARD)
    assert failures == []
    assert sorted((e.stream_id, e.version) for e in store.read_all()) == [
        (f"t{n}", v) for n in range(6) for v in (1, 2, 3)
    ]


# Tasks of random store calls, interleaved at random points, in one unit that commits or
# raises: each append either lands (and commits with the unit) or fails alone.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("exact"), st.integers(0, 2)),  # may lose to another task's append
        st.tuples(st.just("read"), st.integers(0, 2)),
        st.tuples(st.just("query"), st.integers(0, 2)),
        st.tuples(st.just("pause"), st.integers(0, 3)),
    ),
    max_size=6,
)


@each_async_store
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tasks=st.lists(ops, min_size=2, max_size=5), commit=st.booleans())
def test_interleaved_calls_in_a_unit_commit_or_roll_back_as_one(
    backend: Backend, tasks: list[list[tuple[Any, ...]]], commit: bool
) -> None:
    store = backend.raw
    prefix = uuid.uuid4().hex[:8]  # the store is the test's: each example has streams of its own
    streams = [f"{prefix}-{n}" for n in range(3)]
    landed: set[uuid.UUID] = set()

    async def task(calls: list[tuple[Any, ...]]) -> None:
        for call in calls:
            kind, arg = call[0], call[1]
            if kind == "append":
                events = make(call[2])
                await store.append(streams[arg], "S", events, expected_version=ExpectedVersion.ANY)
                landed.update(e.event_id for e in events)
            elif kind == "exact":
                events = make(1)
                version = await store.stream_version(streams[arg])
                try:
                    await store.append(streams[arg], "S", events, expected_version=version)
                except ConcurrencyError:
                    continue
                landed.update(e.event_id for e in events)
            elif kind == "read":
                async for _ in store.read_stream(streams[arg]):
                    await asyncio.sleep(0)
            elif kind == "query":
                await store.read_query(Query.of(QueryItem(types=("Happened",))), limit=arg or None)
            else:
                for _ in range(arg):
                    await asyncio.sleep(0)

    async def body() -> None:
        async with store.transaction():
            await asyncio.gather(*(task(calls) for calls in tasks))
            if not commit:
                raise BoomError

    if commit:
        run(backend, body())
    else:
        with pytest.raises(BoomError):
            run(backend, body())
    found = [e for s in streams for e in backend.store.read_stream(s)]
    assert {e.event_id for e in found} == (landed if commit else set())
    for s in streams:
        versions = [e.version for e in backend.store.read_stream(s)]
        assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize("backend", ["postgres-async"], indirect=True)
def test_tasks_cancelled_in_and_waiting_for_a_turn_leave_the_unit_to_roll_back(
    backend: Backend,
) -> None:
    """One task's append waits for a row another transaction holds, a second task waits
    for its turn, a third fails: the TaskGroup cancels the first in its statement and the
    second in its wait. The unit rolls back with the third task's error, and the store
    (the holder's append to the same stream too) goes on."""
    store = backend.raw

    async def body() -> BaseException | None:
        held, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:  # a unit of its own: a task started outside the test's
            async with store.transaction():
                await store.append("busy", "S", make(1), expected_version=0)
                held.set()
                await release.wait()

        holding = asyncio.create_task(holder())
        await held.wait()

        async def fail() -> None:
            await asyncio.sleep(0.3)  # the others are in their statement and their wait
            raise BoomError

        raised: BaseException | None = None
        try:
            async with store.transaction(), asyncio.TaskGroup() as group:
                group.create_task(store.append("busy", "S", make(1), expected_version=0))
                group.create_task(store.append("other", "S", make(1), expected_version=0))
                group.create_task(fail())
        except BaseException as error:
            raised = error
        release.set()
        await holding
        async with store.transaction():  # the next units work
            await asyncio.gather(
                store.append("busy", "S", make(1), expected_version=1),
                store.append("other", "S", make(1), expected_version=0),
            )
        return raised

    raised = run(backend, body())
    assert isinstance(raised, ExceptionGroup)
    assert [type(e) for e in raised.exceptions] == [BoomError]
    assert stored(backend) == [("busy", 1), ("busy", 2), ("other", 1)]


@pytest.mark.parametrize("backend", ["postgres-async"], indirect=True)
def test_a_checkpoint_written_while_a_task_of_the_unit_appends_is_kept(
    backend: Backend, postgres_dsn: str
) -> None:
    """A handler leaves a task appending in the batch's unit, and the worker writes its
    checkpoint on the unit's connection meanwhile. The task's insert waits for another
    transaction's insert of the same version, then fails, and the task rolls back to its
    savepoint: the checkpoint, written in its own turn, commits with the unit. (Written
    without a turn, it ran between the task's failed insert and its rollback, in the
    aborted transaction, and failed the whole unit; after an insert that succeeded it ran
    inside the task's savepoint, for the task's rollback to undo.)"""
    from esframework.postgres import AsyncPostgresEventStore

    store = backend.raw

    async def insert_waits(other: AsyncPostgresEventStore) -> bool:
        async with other.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%INSERT INTO%events%'"
            )
            row = await cursor.fetchone()
            return row is not None and row[0] > 0

    async def body() -> None:
        lease = store.lease("unit-turns")
        assert await lease.acquire()
        other = AsyncPostgresEventStore(postgres_dsn, schema=store.schema)
        holding, release = asyncio.Event(), asyncio.Event()

        async def hold_version_1() -> None:
            async with other.transaction():
                await other.append("s", "S", make(1), expected_version=0)
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold_version_1())
        try:
            await holding.wait()
            async with store.transaction() as connection:
                appending = asyncio.create_task(store.append("s", "S", make(1), expected_version=0))
                for _ in range(int(GUARD / 0.01)):  # till its insert waits for the other's
                    if await insert_waits(other):
                        break
                    await asyncio.sleep(0.01)
                saving = asyncio.create_task(
                    store.save_checkpoint(connection, "unit-turns", 7, lease, previous=None)
                )
                for _ in range(5):  # let it queue for the connection
                    await asyncio.sleep(0)
                release.set()
                await holder
                with pytest.raises(ConcurrencyError):
                    await appending
                await saving
            assert await store.load_checkpoint("unit-turns") == 7
        finally:
            release.set()
            await holder
            await lease.release()
            await other.close()

    run(backend, body())
