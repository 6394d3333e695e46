"""Read connections beside an SQLite store's own: reads that need not wait for a transaction.

A store's connection belongs to one thread at a time, and a subscription batch holds it for
the whole batch. In WAL mode a second connection reads the last committed state while the
batch writes, so reads from other threads take one of these instead of waiting.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from esframework.errors import StoreUnavailableError

__all__ = ["ReaderPool", "is_private"]


def is_private(path: str) -> bool:
    """Whether `path` names a database only its own connection sees (no reader can share it)."""
    return path in {":memory:", ""}


class ReaderPool:
    """Idle read-only connections to one file, lent to one thread at a time."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        finally:
            with self._lock:
                self._idle.append(connection)

    def close(self) -> None:
        """Close the idle connections (one in use returns to the pool and is reused)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            # Nothing but reads goes through it: a write here would bypass the store's lock.
            connection.execute("PRAGMA query_only = ON")
        except sqlite3.Error as error:
            msg = f"cannot open a read connection to SQLite store {self._path}: {error}"
            raise StoreUnavailableError(msg) from error
        return connection
