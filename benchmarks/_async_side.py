"""esframework's asyncio API on PostgreSQL: the same work as the sync scenarios.

Runs in the esframework side's schema (so `catchup` reads the events it stored), through
`AsyncRepository` over one `AsyncPostgresEventStore` and its pool.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

from _common import LOAD_WRITE_CHUNK, Sizes, amount_for, note_for
from _esframework_side import BenchAccount, Deposited

from esframework import AsyncRepository, Serializer, aggregate_version, emit, new
from esframework.postgres import AsyncPostgresEventStore

__all__ = ["run_async"]

TASKS = 50


def run_async(dsn: str, schema: str, sizes: Sizes) -> dict[str, float]:
    """Every async scenario; rates keyed `async_create`, `async_load_full`, ..."""
    return asyncio.run(_scenarios(dsn, schema, sizes))


async def _scenarios(dsn: str, schema: str, sizes: Sizes) -> dict[str, Any]:
    async with AsyncPostgresEventStore(dsn, schema=schema, max_size=10) as store:
        repo = AsyncRepository(BenchAccount, store=store)
        return {
            "async_create": await _create(repo, sizes.create),
            "async_load_full": await _load_full(repo, sizes.load_events, sizes.load_seconds),
            "async_catchup": await _catchup(store, sizes.catchup),
            f"async_concurrent{TASKS}": await _concurrent(repo, sizes.concurrent_seconds),
        }


def _account(prefix: str, deposits: int) -> BenchAccount:
    account = new(BenchAccount, f"{prefix}-{uuid.uuid4()}")
    for i in range(deposits):
        emit(account, Deposited(amount=amount_for(i), note=note_for(i)))
    return account


async def _create(repo: AsyncRepository[BenchAccount], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await repo.save(_account("async-create", 1))
    return n / (time.perf_counter() - start)


async def _load_full(repo: AsyncRepository[BenchAccount], events: int, seconds: float) -> float:
    account = new(BenchAccount, f"async-load-{uuid.uuid4()}")
    for i in range(1, events + 1):
        emit(account, Deposited(amount=amount_for(i), note=note_for(i)))
        if i % LOAD_WRITE_CHUNK == 0 or i == events:
            await repo.save(account)
    stream_id = _id(account)
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        loaded = await repo.load(stream_id)
        assert aggregate_version(loaded) == events
        count += 1
    return count / (time.perf_counter() - start)


async def _catchup(store: AsyncPostgresEventStore, n: int) -> float:
    decode, seen = Serializer().decode, 0
    start = time.perf_counter()
    async for record in store.iter_all(page_size=1_000):
        decode(record)
        seen += 1
        if seen == n:
            break
    return seen / (time.perf_counter() - start)


async def _concurrent(repo: AsyncRepository[BenchAccount], seconds: float) -> float:
    """TASKS tasks, each saving one event at a time to its own aggregate, through one pool."""
    deadline = time.perf_counter() + seconds
    saved = 0

    async def task() -> None:
        nonlocal saved
        account = _account("async-concurrent", 0)
        while time.perf_counter() < deadline:
            emit(account, Deposited(amount=Decimal("1.00"), note="concurrent"))
            await repo.save(account)
            saved += 1

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return saved / (time.perf_counter() - start)


def _id(account: BenchAccount) -> str:
    from esframework import aggregate_id

    return aggregate_id(account)
