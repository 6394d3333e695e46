"""Async twins of the embedded stores: the sync store's calls, run in a worker thread.

SQLite has no async driver in the standard library; its calls are short, so running each in
a worker thread keeps the event loop free without a second implementation to keep in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from esframework._checks import DEFAULT_PAGE_SIZE
from esframework._memory import InMemoryEventStore
from esframework._queries import AppendCondition, Query, QueryResult
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    ParkedEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._sqlite import SQLiteEventStore
from esframework._sqlite_lease import DEFAULT_LEASE_TIMEOUT, SQLiteLease
from esframework._sqlite_subscriptions import PollingListener
from esframework._store import EventStore
from esframework._store_async import AsyncEventStore
from esframework._subscription_store_async import AsyncLease, AsyncSubscriptionStore

__all__ = ["AsyncInMemoryEventStore", "AsyncSQLiteEventStore"]

T = TypeVar("T")

# The open transactions (one token per store) the running task is in. Tasks copy their
# parent's context, so the tasks a handler starts (`asyncio.gather`) join its transaction.
_JOINED: contextvars.ContextVar[frozenset[object]] = contextvars.ContextVar(
    "esframework_joined_transactions", default=frozenset()
)
_READ_THREADS = 4  # reads beside a transaction at once; more wait for a thread


class _AsyncOverSync(AsyncEventStore):
    """Runs a sync store's operations off the event loop (or inline, for memory)."""

    def __init__(self, sync: EventStore, *, threaded: bool) -> None:
        self.sync = sync
        # One thread for all of a store's writes: SQLite serializes them anyway, and a
        # transaction begun in that thread is joined by the store calls made in it meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=1) if threaded else None
        # Reads of tasks outside the transaction run beside it, on the sync store's reader
        # connections (see `SQLiteEventStore._reading`), instead of waiting for its end.
        self._read_executor = (
            ThreadPoolExecutor(max_workers=_READ_THREADS, thread_name_prefix="esframework-read")
            if threaded
            else None
        )
        # Only the transaction's own task, and the tasks it starts meanwhile (they inherit
        # its context, so its token), join it; other tasks' writes wait for its end.
        self._transaction_lock: asyncio.Lock | None = None
        self._token: object | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _joins(self) -> bool:
        """Whether the running task is inside this store's open transaction."""
        return self._token is not None and self._token in _JOINED.get()

    async def _call(self, function: Callable[[], T]) -> T:
        if self._joins():
            return await self._run_in_thread(function)
        if self._token is None and self._executor is None:  # inline, so never interleaved
            return function()
        async with self._exclusive():
            return await self._run_in_thread(function)

    async def _read(self, function: Callable[[], T]) -> T:
        """Run a read: in the transaction if the task is in it, else beside any transaction."""
        if self._read_executor is None or self._joins():
            return await self._call(function)
        return await asyncio.get_running_loop().run_in_executor(self._read_executor, function)

    @contextlib.contextmanager
    def _owned(self) -> Iterator[None]:
        """Mark the running task, and the tasks it starts meanwhile, as the transaction's."""
        token = self._token = object()
        reset = _JOINED.set(_JOINED.get() | {token})
        try:
            yield
        finally:
            _JOINED.reset(reset)
            self._token = None

    async def _run_in_thread(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            return function()
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def _exclusive(self) -> asyncio.Lock:
        if self._transaction_lock is None:  # created in the running loop, on first use
            self._transaction_lock = asyncio.Lock()
        return self._transaction_lock

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        return await self._call(
            lambda: self.sync.append(
                stream_id,
                stream_type,
                events,
                expected_version=expected_version,
                condition=condition,
            )
        )

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> AsyncIterator[StoredEvent]:
        events = self.sync.read_stream(
            stream_id,
            from_version=from_version,
            to_version=to_version,
            include_archived=include_archived,
        )
        while chunk := await self._read(lambda: _take(events, DEFAULT_PAGE_SIZE)):
            for event in chunk:
                yield event

    async def read_payloads(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> AsyncIterator[EventPayload]:
        events = self.sync.read_payloads(
            stream_id,
            from_version=from_version,
            to_version=to_version,
            include_archived=include_archived,
        )
        while chunk := await self._read(lambda: _take(events, DEFAULT_PAGE_SIZE)):
            for event in chunk:
                yield event

    async def stream_version(self, stream_id: str) -> int:
        return await self._read(lambda: self.sync.stream_version(stream_id))

    async def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        return await self._read(
            lambda: self.sync.read_all(
                after=after, limit=limit, stream_types=stream_types, event_types=event_types
            )
        )

    async def read_query(
        self, query: Query, *, after: int = 0, limit: int | None = None
    ) -> QueryResult:
        return await self._read(lambda: self.sync.read_query(query, after=after, limit=limit))

    async def head(self) -> int:
        return await self._read(self.sync.head)

    async def stored_event_types(self) -> frozenset[str]:
        return await self._read(self.sync.stored_event_types)

    async def version_at(self, stream_id: str, as_of: datetime) -> int:
        return await self._read(lambda: self.sync.version_at(stream_id, as_of))

    async def position_at(self, as_of: datetime) -> int:
        return await self._read(lambda: self.sync.position_at(as_of))

    async def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        return await self._read(lambda: self.sync.load_snapshot(stream_id))

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        await self._call(lambda: self.sync.save_snapshot(snapshot))

    async def truncate_before(self, stream_id: str, version: int) -> None:
        await self._call(lambda: self.sync.truncate_before(stream_id, version))

    async def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        wanted = list(subjects)
        if create:
            return await self._call(lambda: self.sync.personal_data_keys(wanted, create=True))
        return await self._read(lambda: self.sync.personal_data_keys(wanted))

    async def delete_personal_data_key(self, subject: str) -> None:
        await self._call(lambda: self.sync.delete_personal_data_key(subject))

    async def close(self) -> None:
        await self._call(self.sync.close)
        for executor in (self._executor, self._read_executor):
            if executor is not None:
                executor.shutdown()


def _take(events: Iterator[T], count: int) -> list[T]:
    return list(islice(events, count))


class AsyncSQLiteEventStore(_AsyncOverSync, AsyncSubscriptionStore[sqlite3.Connection]):
    """The SQLite store for asyncio applications: each call runs in a worker thread.

    Takes the same arguments as `SQLiteEventStore`; `sync` is that store. Handlers of its
    subscriptions receive a `sqlite3.Connection` and call it directly: SQLite calls are short.
    """

    sync: SQLiteEventStore

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = 10.0,
        synchronous: str = "FULL",
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        super().__init__(
            SQLiteEventStore(
                path, timeout=timeout, synchronous=synchronous, lease_timeout=lease_timeout
            ),
            threaded=True,
        )

    def lease(self, subscription: str) -> _AsyncLease:
        return _AsyncLease(self.sync.lease(subscription), self._call)

    def listener(self) -> _AsyncPollingListener:
        return _AsyncPollingListener(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[sqlite3.Connection]:
        """Lend the store's connection inside a write transaction (see the sync store's).

        The store calls this task makes meanwhile, and those of the tasks it starts (as with
        `asyncio.gather`), join the transaction; other tasks' writes wait until it ends, and
        their reads see the last committed state meanwhile.
        """
        if self._joins():
            yield await self._run_in_thread(self.sync._db)  # noqa: SLF001 -- joins its own unit
            return
        async with self._exclusive():
            with self._owned():
                connection = await self._begin()
                try:
                    yield connection
                except BaseException:
                    await self._run_in_thread(lambda: self.sync.end(connection, commit=False))
                    raise
                # Cancelled while these wait, the thread still ends the transaction, before
                # any call queued after it: the executor has one thread.
                await self._run_in_thread(lambda: self.sync.end(connection, commit=True))

    async def _begin(self) -> sqlite3.Connection:
        begun = asyncio.ensure_future(self._run_in_thread(self.sync.begin))
        try:
            return await asyncio.shield(begun)
        except asyncio.CancelledError:
            # The thread begins the transaction anyway: roll it back before letting go of the
            # store, or the next caller's writes would land in a transaction nobody commits.
            cleanup = asyncio.ensure_future(self._roll_back_when_begun(begun))
            while not cleanup.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(cleanup)
            raise

    async def _roll_back_when_begun(self, begun: asyncio.Future[sqlite3.Connection]) -> None:
        try:
            connection = await begun
        except Exception:  # noqa: BLE001 -- it never began: nothing to roll back
            return
        await self._run_in_thread(lambda: self.sync.end(connection, commit=False))

    async def archive(self, *, max_events: int = 5000) -> int:
        """Move up to `max_events` truncated events to the archive (see the sync store's)."""
        return await self._call(lambda: self.sync.archive(max_events=max_events))

    async def archivable(self) -> int:
        """Return how many events of truncated or closed streams wait to be archived."""
        return await self._read(self.sync.archivable)

    async def purge_forgotten_keys(self) -> None:
        """Make forgotten keys leave the store's files (see the sync store's)."""
        await self._call(self.sync.purge_forgotten_keys)

    async def load_checkpoint(self, subscription: str) -> int | None:
        return await self._read(lambda: self.sync.load_checkpoint(subscription))

    async def save_checkpoint(
        self,
        connection: sqlite3.Connection,
        subscription: str,
        position: int,
        lease: AsyncLease,
        *,
        previous: int | None,
    ) -> None:
        held = lease.sync if isinstance(lease, _AsyncLease) else lease
        self.sync.save_checkpoint(connection, subscription, position, held, previous=previous)

    async def park(
        self, connection: sqlite3.Connection, subscription: str, event: StoredEvent, error: str
    ) -> None:
        self.sync.park(connection, subscription, event, error)

    async def unpark(
        self, connection: sqlite3.Connection, subscription: str, position: int | None
    ) -> int:
        return self.sync.unpark(connection, subscription, position)

    async def parked(self, subscription: str) -> list[ParkedEvent]:
        return await self._read(lambda: self.sync.parked(subscription))

    async def parked_streams(
        self, connection: sqlite3.Connection, subscription: str, stream_ids: Collection[str]
    ) -> frozenset[str]:
        return self.sync.parked_streams(connection, subscription, stream_ids)


class _AsyncLease:
    """A SQLite lease whose writes run where the store's calls run: inside a batch, they
    join the batch's transaction."""

    def __init__(self, lease: SQLiteLease, call: Callable[[Callable[[], Any]], Any]) -> None:
        self.sync = lease
        self.renew_every = lease.renew_every
        self._call = call

    async def acquire(self) -> bool:
        return bool(await self._call(self.sync.acquire))

    async def renew(self) -> None:
        if self.sync.due():
            await self._call(self.sync.renew)

    async def release(self) -> None:
        await self._call(self.sync.release)


class _AsyncPollingListener:
    """Waits by watching the head position: SQLite cannot push notifications."""

    def __init__(self, store: AsyncSQLiteEventStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def wait(self, timeout: float) -> None:
        start = await self._store.head()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(PollingListener.INTERVAL)
            if await self._store.head() != start:
                return


class AsyncInMemoryEventStore(_AsyncOverSync):
    """The in-memory store for asyncio tests; `sync` is the underlying `InMemoryEventStore`."""

    sync: InMemoryEventStore

    def __init__(self) -> None:
        super().__init__(InMemoryEventStore(), threaded=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Open a unit of work (see the sync store's): the calls this task and the tasks it
        starts make meanwhile join it; other tasks' calls wait until it ends."""
        if self._joins():
            yield  # joins its own unit
            return
        async with self._exclusive():
            with self._owned(), self.sync.transaction():
                yield
