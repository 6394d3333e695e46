"""The production event store: PostgreSQL through psycopg 3 and a connection pool."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from psycopg import pq
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from esframework._records import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._store import (
    EventStore,
    check_expected_version,
    expected_as_int,
    match_retry,
    stored_by_id,
    validate_stream_id,
)
from esframework.errors import ConcurrencyError
from esframework.postgres import _migrations
from esframework.postgres._errors import is_connection_lost, translate, violated_constraint
from esframework.postgres._sql import (
    Statements,
    append_params,
    snapshot_params,
    to_snapshot,
    to_stored,
)

__all__ = ["PostgresEventStore"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

STREAM_PAGE_SIZE = 5000
"""Rows per query when reading a stream: one query for most aggregates, bounded memory for all."""


class _RawJsonLoader(Loader):
    """Loads JSONB as its bytes: the serializer parses it with orjson, by the declared types."""

    def load(self, data: pq.abc.Buffer) -> bytes:
        return bytes(data)


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.adapters.register_loader("jsonb", _RawJsonLoader)


class PostgresEventStore(EventStore):
    """An event store in PostgreSQL, for production.

    Appends are one statement and one round trip; the database enforces stream versions and
    event-id idempotency, and hands out global positions in commit order (see the docs'
    "Global order" page). Create the tables with `migrate()` or `esframework migrate`.

    Args:
        conninfo: A libpq connection string or URL. Give this or `pool`.
        pool: A `psycopg_pool.ConnectionPool` to use instead; the store does not close it.
        schema: The PostgreSQL schema holding the store's tables.
        min_size: The least connections the store's own pool keeps open.
        max_size: The most connections the store's own pool opens.
        pool_timeout: Seconds to wait for a free connection before `StoreUnavailableError`.
        lock_timeout: Seconds an append waits for another transaction's append to commit
            before failing; bounds how long an append left open elsewhere can stall writers.
        reconnect_attempts: How often an operation is retried on a fresh connection after
            the connection was lost. Appends are idempotent, so a retried append that had
            committed reports the stored positions instead of failing.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 10.0,
        lock_timeout: float = 10.0,
        reconnect_attempts: int = 3,
    ) -> None:
        if (conninfo is None) == (pool is None):
            msg = "give PostgresEventStore either a conninfo string or a pool"
            raise ValueError(msg)
        self.schema = schema
        self._statements = Statements(schema)
        self._attempts = reconnect_attempts + 1
        self._owns_pool = pool is None
        self._pool: ConnectionPool[Any] = pool or ConnectionPool(
            conninfo or "",
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            kwargs={"autocommit": True, "options": f"-c lock_timeout={int(lock_timeout * 1000)}"},
            configure=_configure,
            open=False,
            name=f"esframework:{schema}",
        )
        self._opened = not self._owns_pool
        self._open_lock = threading.Lock()

    def __enter__(self) -> Self:
        self._ensure_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's own pool (a pool given to the store is left open)."""
        if self._owns_pool:
            self._pool.close()

    def migrate(self) -> list[str]:
        """Create or upgrade the store's tables; return the names of the migrations applied."""
        applied = self._run("migrate", lambda conn: _migrations.migrate(conn, self.schema))
        return [m.name for m in applied]

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection, for read models kept in the same database."""
        self._ensure_open()
        with self._pool.connection() as conn:
            _configure(conn)
            yield conn

    def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
    ) -> AppendResult:
        validate_stream_id(stream_id)
        expected = expected_as_int(expected_version)
        if not events:
            msg = "append needs at least one event"
            raise ValueError(msg)
        params = append_params(self._statements, stream_id, stream_type, events, expected)

        def attempt(conn: psycopg.Connection[Any]) -> AppendResult:
            try:
                rows = conn.execute(self._statements.append, params).fetchall()
            except psycopg.Error as error:
                if violated_constraint(error) not in {"events_pkey", "unique_stream_version"}:
                    raise
                _rollback_if_failed(conn)
                rows = []
            if rows:
                return AppendResult(
                    stream_id=stream_id,
                    version=rows[-1][1],
                    positions=tuple(position for position, _ in rows),
                )
            # Nothing was written: a retry of a committed append, or a conflict.
            stored = conn.execute(self._statements.by_ids, ([e.event_id for e in events],))
            retry = match_retry(stream_id, events, stored_by_id(map(to_stored, stored)))
            if retry is not None:
                return retry
            (actual,) = conn.execute(self._statements.stream_version, (stream_id,)).fetchone()  # type: ignore[misc]
            check_expected_version(stream_id, expected, actual)
            raise ConcurrencyError(stream_id, expected, actual)  # lost a race for the version

        return self._run(f"append to stream {stream_id!r}", attempt)

    def read_stream(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[StoredEvent]:
        last = 2**62 if to_version is None else to_version
        while True:
            rows = self._read_stream_page(stream_id, from_version, last)
            yield from map(to_stored, rows)
            if len(rows) < STREAM_PAGE_SIZE:
                return
            from_version = rows[-1][7] + 1

    def _read_stream_page(self, stream_id: str, first: int, last: int) -> list[Any]:
        page = (stream_id, first, last, STREAM_PAGE_SIZE)
        return self._run(
            f"read stream {stream_id!r}",
            lambda conn: conn.execute(self._statements.read_stream, page).fetchall(),
        )

    def stream_version(self, stream_id: str) -> int:
        row = self._run(
            f"read stream {stream_id!r}",
            lambda conn: conn.execute(self._statements.stream_version, (stream_id,)).fetchone(),
        )
        return int(row[0]) if row else 0

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        query, params = self._statements.read_all(after, limit, stream_types, event_types)
        rows = self._run(
            f"read events after position {after}",
            lambda conn: conn.execute(query, params).fetchall(),
        )
        return list(map(to_stored, rows))

    def head(self) -> int:
        row = self._run(
            "read the head position",
            lambda conn: conn.execute(self._statements.head).fetchone(),
        )
        return int(row[0]) if row else 0

    def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        row = self._run(
            f"read the snapshot of {stream_id!r}",
            lambda conn: conn.execute(self._statements.load_snapshot, (stream_id,)).fetchone(),
        )
        return None if row is None else to_snapshot(stream_id, row)

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        self._run(
            f"snapshot {snapshot.stream_id!r}",
            lambda conn: conn.execute(self._statements.save_snapshot, snapshot_params(snapshot)),
        )

    def _ensure_open(self) -> None:
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True

    def _run(self, doing: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work` on a pooled connection, retrying on a fresh one if the connection is lost."""
        self._ensure_open()
        attempt = 1
        while True:
            try:
                with self._pool.connection() as conn:
                    if not self._owns_pool:
                        _configure(conn)
                    return work(conn)
            except PoolTimeout as error:
                raise translate(error, doing) from error
            except psycopg.Error as error:
                if attempt == self._attempts or not is_connection_lost(error):
                    raise translate(error, doing) from error
                logger.warning("connection lost (%s); retrying to %s", error, doing)
                time.sleep(0.05 * 2**attempt)
                attempt += 1


def _rollback_if_failed(conn: psycopg.Connection[Any]) -> None:
    # With a pool of non-autocommit connections, the failed statement aborted a transaction.
    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        conn.rollback()
