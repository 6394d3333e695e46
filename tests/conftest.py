"""Fixtures shared by the whole suite: every store backend, sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from esframework import (
    AsyncInMemoryEventStore,
    AsyncRepository,
    AsyncSQLiteEventStore,
    EventPayload,
    EventStore,
    InMemoryEventStore,
    Repository,
    SQLiteEventStore,
)
from tests.fixtures.asyncio_bridge import Blocking, LoopThread

BACKENDS = ["memory", "sqlite", "postgres", "memory-async", "sqlite-async", "postgres-async"]


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@attrs.define
class Backend:
    """A store under test: `store` has the sync API (bridged for async stores)."""

    name: str
    raw: Any
    loop: LoopThread | None

    @property
    def store(self) -> EventStore:
        return self.raw if self.loop is None else Blocking(self.raw, self.loop)  # type: ignore[return-value]

    def repository(self, cls: type[Any], *, store: Any = None, **options: Any) -> Any:
        """A Repository over this backend, or a blocking AsyncRepository for async ones."""
        target = self.raw if store is None else store
        if self.loop is None:
            return Repository(cls, store=target, **options)
        return Blocking(AsyncRepository(cls, store=target, **options), self.loop)

    def counting(self) -> Any:
        """Wrap the raw store, counting the events that loads read from it."""
        return CountingStore(self.raw) if self.loop is None else AsyncCountingStore(self.raw)


@attrs.define
class CountingStore:
    inner: Any
    read: int = 0

    def read_payloads(self, stream_id: str, **kwargs: Any) -> Iterator[EventPayload]:
        for record in self.inner.read_payloads(stream_id, **kwargs):
            self.read += 1
            yield record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@attrs.define
class AsyncCountingStore:
    inner: Any
    read: int = 0

    async def read_payloads(self, stream_id: str, **kwargs: Any) -> AsyncIterator[EventPayload]:
        async for record in self.inner.read_payloads(stream_id, **kwargs):
            self.read += 1
            yield record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[Backend]:
    """Each test using this fixture runs once per store backend, sync and async."""
    kind = request.param
    if kind == "memory":
        yield Backend(kind, InMemoryEventStore(), None)
    elif kind == "sqlite":
        with SQLiteEventStore(sqlite_path) as sqlite:
            yield Backend(kind, sqlite, None)
    elif kind == "postgres":
        yield Backend(kind, request.getfixturevalue("postgres_store"), None)
    else:
        loop: LoopThread = request.getfixturevalue("loop_thread")
        if kind == "memory-async":
            raw: Any = AsyncInMemoryEventStore()
        elif kind == "sqlite-async":
            raw = AsyncSQLiteEventStore(sqlite_path)
        else:
            raw = request.getfixturevalue("async_postgres_store")
        yield Backend(kind, raw, loop)
        if kind != "postgres-async":
            loop.run(raw.close())


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return backend.store
