"""One harness over the four subscription backends: SQLite and PostgreSQL, sync and async.

Tests write handlers and projections once, as plain functions of `(envelope, sql)`, where
`sql(statement, *params)` runs a statement (written with `?` placeholders) on the handler's
connection; the harness adapts them to each backend's connection and to async.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from esframework import (
    AsyncSQLiteEventStore,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    Envelope,
    Repository,
    Serializer,
    SQLiteEventStore,
    Subscription,
    SubscriptionWorker,
)
from esframework._serialization import DEFAULT_SERIALIZER
from tests.fixtures.asyncio_bridge import Blocking, LoopThread

Sql = Callable[..., list[tuple[Any, ...]]]
Handle = Callable[[Envelope[Any], Sql], None]


@attrs.define
class Harness:
    """Builds workers for one backend; `store` is always the sync store over the same data."""

    kind: str
    store: Any  # sync store: append, read, and inspect read models with `query`
    raw: Any  # the store the workers use (async for async kinds)
    loop: LoopThread | None

    @property
    def is_async(self) -> bool:
        return self.loop is not None

    @property
    def on_postgres(self) -> bool:
        return self.kind.startswith("postgres")

    def table(self, name: str) -> str:
        """A read-model table's name, in the test's own schema on PostgreSQL."""
        return f'"{self.store.schema}".{name}' if self.on_postgres else name

    def query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run a statement (with ? placeholders) on the store's database and commit."""
        with self.store.transaction() as connection:
            return _sync_sql(connection, self.on_postgres)(statement, *params)

    def worker(
        self,
        handle: Handle,
        *,
        reset: Callable[[Sql], None] | None = None,
        serializer: Serializer = DEFAULT_SERIALIZER,
        **options: Any,
    ) -> Any:
        """A worker for a subscription whose handler is `handle` (a projection if `reset`)."""
        options.setdefault("name", "test")
        options.setdefault("poll_interval", 0.2)
        options.setdefault("lease_interval", 0.1)
        options.setdefault("retry_delay", 0.01)
        if self.loop is None:
            handler: Any = _SyncProjection(handle, reset, self.on_postgres)
            if reset is None:
                handler = handler.handle
            return SubscriptionWorker(
                self.raw, Subscription(handler=handler, **options), serializer=serializer
            )
        async_handler: Any = _AsyncProjection(handle, reset, self.on_postgres)
        if reset is None:
            async_handler = async_handler.handle
        worker = AsyncSubscriptionWorker(
            self.raw, AsyncSubscription(handler=async_handler, **options), serializer=serializer
        )
        return BlockingWorker(worker, self.loop)

    def repository(self, cls: type[Any]) -> Repository[Any]:
        return Repository(cls, store=self.store)


class BlockingWorker(Blocking):
    """An async worker driven from sync tests; `stopper` and `progress` are passed through."""

    def run_in_background(self) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(self._target.run(), self._loop.loop)


def _sync_sql(connection: Any, postgres: bool) -> Sql:
    def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        cursor = connection.execute(statement.replace("?", "%s") if postgres else statement, params)
        return list(cursor.fetchall()) if cursor.description else []

    return sql


@attrs.define
class _SyncProjection:
    _handle: Handle
    _reset: Callable[[Sql], None] | None
    _postgres: bool

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        self._handle(envelope, _sync_sql(connection, self._postgres))

    def reset(self, connection: Any) -> None:
        assert self._reset is not None
        self._reset(_sync_sql(connection, self._postgres))


@attrs.define
class _AsyncProjection:
    """Runs the same test handler on an async connection.

    The handler's `sql` calls are recorded and replayed with `await`, since the handler
    itself is a plain function: it may only use results of statements already run.
    """

    _handle: Handle
    _reset: Callable[[Sql], None] | None
    _postgres: bool

    async def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        await _run_async(lambda sql: self._handle(envelope, sql), connection, self._postgres)

    async def reset(self, connection: Any) -> None:
        assert self._reset is not None
        await _run_async(self._reset, connection, self._postgres)


class _Unavailable(list[tuple[Any, ...]]):
    """The result of a statement the async harness runs later: using it is a test bug."""

    def __iter__(self) -> Any:
        raise AssertionError("async test handlers cannot read query results")

    def __len__(self) -> int:
        raise AssertionError("async test handlers cannot read query results")


async def _run_async(body: Callable[[Sql], None], connection: Any, postgres: bool) -> None:
    statements: list[tuple[str, tuple[Any, ...]]] = []

    def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        statements.append((statement, params))
        return _Unavailable()

    body(sql)
    for statement, params in statements:
        result = connection.execute(statement.replace("?", "%s") if postgres else statement, params)
        if inspect.isawaitable(result):
            await result


KINDS = ["sqlite", "sqlite-async", "postgres", "postgres-async"]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each test using this fixture runs on SQLite and PostgreSQL, sync and async."""
    kind = request.param
    loop: LoopThread | None = None
    if kind.endswith("async"):
        loop = request.getfixturevalue("loop_thread")
    if kind.startswith("sqlite"):
        path = tmp_path / "events.db"
        with SQLiteEventStore(path) as sync:
            raw: Any = sync if loop is None else AsyncSQLiteEventStore(path)
            yield Harness(kind, sync, raw, loop)
            if loop is not None:
                loop.run(raw.close())
        return
    sync = request.getfixturevalue("postgres_store")
    raw = sync if loop is None else request.getfixturevalue("async_postgres_store")
    yield Harness(kind, sync, raw, loop)
