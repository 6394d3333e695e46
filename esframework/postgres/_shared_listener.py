"""One LISTEN connection for every subscription of a runner, fanning wake-ups out (PostgreSQL).

Written by hand for both flavours (not generated): the sync one reads notifications on a
thread of its own, the async one in a task, and each waiter has its own flag, set by every
notification, so a notification that arrives while a worker reads a page is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg import sql

from esframework.errors import StoreError
from esframework.postgres._connection_setup import (
    NOTIFY_CHANNEL,
    application_name,
    set_lock_timeout,
)
from esframework.postgres._errors import translate

__all__ = ["AsyncSharedListener", "SharedListener"]

_READ_SLICE = 0.5  # seconds: how often the reader notices that nobody listens any more


class _Waiter:
    def __init__(self, listener: SharedListener) -> None:
        self._listener = listener
        self.woken = threading.Event()

    def wait(self, timeout: float) -> None:
        """Return at the next append to this schema, or after `timeout` seconds."""
        self.woken.wait(timeout)
        self.woken.clear()
        self._listener.check()


class SharedListener:
    """One connection that LISTENs for a runner's workers (see the module's docstring)."""

    def __init__(self, conninfo: str, schema: str, *, lock_timeout: float | None = None) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()
        self._reader: threading.Thread | None = None
        self._failure: StoreError | None = None

    @contextlib.contextmanager
    def listener(self) -> Iterator[_Waiter]:
        """Wait for appends through the shared connection while in the block."""
        waiter = _Waiter(self)
        with self._lock:
            self._failure = None
            if self._reader is None:
                connection = self._connect()
                self._reader = threading.Thread(
                    target=self._read, args=(connection,), name="listener", daemon=True
                )
                self._reader.start()
            self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.Connection.connect(
                self._conninfo, autocommit=True, application_name=application_name(self._schema)
            )
            connection.execute(*self._set_lock_timeout)
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
        return connection

    def _read(self, connection: psycopg.Connection[Any]) -> None:
        try:
            while True:
                with self._lock:
                    if not self._waiters:  # under the lock: the next waiter starts a reader
                        self._reader = None
                        return
                for notice in connection.notifies(timeout=_READ_SLICE):
                    if notice.payload == self._schema:
                        with self._lock:
                            for waiter in self._waiters:
                                waiter.woken.set()
        except psycopg.Error as error:
            self._failure = translate(error, "listen for appended events")
            with self._lock:
                self._reader = None
                for waiter in self._waiters:
                    waiter.woken.set()
        finally:
            connection.close()


class _AsyncWaiter:
    def __init__(self, listener: AsyncSharedListener) -> None:
        self._listener = listener
        self.woken = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return at the next append to this schema, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)
        self.woken.clear()
        self._listener.check()


class AsyncSharedListener:
    """One connection that LISTENs for a runner's tasks (see the module's docstring)."""

    def __init__(self, conninfo: str, schema: str, *, lock_timeout: float | None = None) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._lock = asyncio.Lock()
        self._waiters: set[_AsyncWaiter] = set()
        self._reader: asyncio.Task[None] | None = None
        self._failure: StoreError | None = None

    @contextlib.asynccontextmanager
    async def listener(self) -> AsyncIterator[_AsyncWaiter]:
        """Wait for appends through the shared connection while in the block."""
        waiter = _AsyncWaiter(self)
        async with self._lock:
            self._failure = None
            if self._reader is None or self._reader.done():
                connection = await self._connect()
                self._reader = asyncio.create_task(self._read(connection), name="listener")
            self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)
            if not self._waiters and self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
                self._reader = None

    def check(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=application_name(self._schema)
            )
            await connection.execute(*self._set_lock_timeout)
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
        return connection

    async def _read(self, connection: psycopg.AsyncConnection[Any]) -> None:
        try:
            async for notice in connection.notifies():
                if notice.payload == self._schema:
                    for waiter in self._waiters:
                        waiter.woken.set()
        except psycopg.Error as error:
            self._failure = translate(error, "listen for appended events")
            for waiter in self._waiters:
                waiter.woken.set()
        finally:
            await connection.close()
