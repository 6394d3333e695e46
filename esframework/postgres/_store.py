# WARNING: generated from _store_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The production event store: PostgreSQL through psycopg 3 and a connection pool."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, LiteralString, Self, TypeAlias, TypeVar

import psycopg
from psycopg import pq, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from esframework._checks import (
    DEFAULT_PAGE_SIZE,
    check_expected_version,
    check_stream_type,
    expected_as_int,
    match_retry,
    stored_by_id,
    validate_event_ids,
    validate_stream_id,
    validate_type_names,
)
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    ParkedEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._subscriptions import Lease, SubscriptionStore
from esframework.errors import ConcurrencyError, LeaseLostError
from esframework.postgres._coordination import PostgresLease, PostgresListener
from esframework.postgres._errors import is_connection_lost, translate, violated_constraint
from esframework.postgres._migrations import migrate
from esframework.postgres._sql import (
    Statements,
    append_params,
    application_name,
    lease_key_halves,
    pool_conninfo,
    snapshot_params,
    to_snapshot,
    to_stored,
)

__all__ = ["PostgresEventStore"]

logger = logging.getLogger(__name__)

STREAM_PAGE_SIZE = 5000
"""Rows per query when reading a stream: one query for most aggregates, bounded memory for all."""

T = TypeVar("T")
Query: TypeAlias = bytes | sql.Composed | LiteralString
Params: TypeAlias = Sequence[Any] | dict[str, Any] | None
_Work: TypeAlias = Callable[[psycopg.Connection[Any]], T]


# JSONB arrives as its text, unparsed: the serializer parses it with orjson, by the declared
# field types. The loader registered for `text` is psycopg's fastest (its C one, if installed).
_TEXT_LOADER = psycopg.adapters.get_loader(psycopg.postgres.types["text"].oid, pq.Format.TEXT)


def _configure(connection: psycopg.Connection[Any]) -> None:
    if _TEXT_LOADER is not None:
        connection.adapters.register_loader("jsonb", _TEXT_LOADER)


class PostgresEventStore(SubscriptionStore[psycopg.Connection[Any]]):
    """An event store in PostgreSQL, for production.

    Appends are one statement and one round trip; the database enforces stream versions and
    event-id idempotency, and hands out global positions in commit order (see the docs'
    "PostgreSQL" page). Create the tables with `migrate()` or `esframework migrate`.

    Args:
        conninfo: A libpq connection string or URL. Give this or `pool`.
        pool: A psycopg_pool pool to use instead; the store does not close it.
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
            msg = "give the store either a conninfo string or a pool"
            raise ValueError(msg)
        self.schema = schema
        # Leases and listeners hold connections of their own, outside the pool.
        self.conninfo = conninfo or (
            pool_conninfo(pool.conninfo, pool.kwargs) if pool is not None else ""
        )
        self._statements = Statements(schema)
        self._attempts = reconnect_attempts + 1
        self._owns_pool = pool is None
        self._pool: ConnectionPool[Any] = pool or ConnectionPool(
            conninfo or "",
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            kwargs={
                "autocommit": True,
                "options": f"-c lock_timeout={int(lock_timeout * 1000)}",
                "application_name": application_name(schema),
            },
            configure=_configure,
            open=False,
            name=f"esframework:{schema}",
        )
        self._opened = not self._owns_pool

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

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            return [m.name for m in migrate(conn, self.schema)]

        return self._run("migrate", work)

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
        validate_type_names(stream_type, events)
        validate_event_ids(stream_id, events)
        expected = expected_as_int(expected_version)
        params = append_params(self._statements, stream_id, stream_type, events, expected)

        def attempt(conn: psycopg.Connection[Any]) -> AppendResult:
            try:
                cursor = conn.execute(self._statements.append(len(events)), params)
                rows = cursor.fetchall()
            except psycopg.Error as error:
                violated = violated_constraint(error)
                if violated not in {"events_pkey", "unique_stream_version"}:
                    raise
                _rollback_if_failed(conn)
                rows = []
                if expected is None and violated == "unique_stream_version":
                    rows = self._append_after_lock(conn, len(events), params)
            if rows:
                return AppendResult(
                    stream_id=stream_id,
                    version=rows[-1][1],
                    positions=tuple(position for position, _ in rows),
                )
            # Nothing was written: a retry of a committed append, or a conflict.
            cursor = conn.execute(self._statements.by_ids, ([e.event_id for e in events],))
            stored = stored_by_id(map(to_stored, cursor.fetchall()))
            retry = match_retry(stream_id, stream_type, events, stored)
            if retry is not None:
                return retry
            cursor = conn.execute(self._statements.stream_head, (stream_id,))
            actual, stored_type = cursor.fetchone() or (0, None)
            check_stream_type(stream_id, stream_type, stored_type)
            check_expected_version(stream_id, expected, actual)
            raise ConcurrencyError(stream_id, expected, actual)  # lost a race for the version

        return self._run(f"append to stream {stream_id!r}", attempt)

    def _append_after_lock(
        self, conn: psycopg.Connection[Any], count: int, params: list[Any]
    ) -> list[Any]:
        """Append expecting any version, taking the append lock first.

        The single statement reads the stream's version from a snapshot taken before it
        waited for the lock, so after waiting it may pick a version another append just took.
        Taking the lock in a statement of its own first, the append's snapshot sees every
        append before it, and none can commit meanwhile.

        Returns no rows if some event id is stored meanwhile (a racing append of the same
        batch committed first): the caller then decides, from what is stored, whether this
        is a retry or a conflict.
        """
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._statements.lock_key,))
                cursor = conn.execute(self._statements.append(count), params)
                return cursor.fetchall()
        except psycopg.Error as error:
            if violated_constraint(error) != "events_pkey":
                raise
            _rollback_if_failed(conn)
            return []

    def read_stream(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[StoredEvent]:
        last = 2**62 if to_version is None else to_version
        while True:
            rows = self._fetch(
                f"read stream {stream_id!r}",
                self._statements.read_stream,
                (stream_id, from_version, last, STREAM_PAGE_SIZE),
            )
            for row in rows:
                yield to_stored(row)
            if len(rows) < STREAM_PAGE_SIZE:
                return
            from_version = rows[-1][7] + 1

    def read_payloads(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[EventPayload]:
        last = 2**62 if to_version is None else to_version
        while True:
            rows = self._fetch(
                f"read stream {stream_id!r}",
                self._statements.read_payloads,
                (stream_id, from_version, last, STREAM_PAGE_SIZE),
            )
            for row in rows:
                yield EventPayload._make(row)
            if len(rows) < STREAM_PAGE_SIZE:
                return
            from_version = rows[-1][1] + 1

    def stream_version(self, stream_id: str) -> int:
        rows = self._fetch(
            f"read stream {stream_id!r}", self._statements.stream_version, (stream_id,)
        )
        return int(rows[0][0])

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        query, params = self._statements.read_all(after, limit, stream_types, event_types)
        rows = self._fetch(f"read events after position {after}", query, params)
        return list(map(to_stored, rows))

    def head(self) -> int:
        rows = self._fetch("read the head position", self._statements.head, None)
        return int(rows[0][0])

    def stored_event_types(self) -> frozenset[str]:
        rows = self._fetch("read the stored event types", self._statements.stored_event_types, None)
        return frozenset(name for (name,) in rows)

    def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        rows = self._fetch(
            f"read the snapshot of {stream_id!r}", self._statements.load_snapshot, (stream_id,)
        )
        return to_snapshot(stream_id, rows[0]) if rows else None

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        self._fetch(
            f"snapshot {snapshot.stream_id!r}",
            self._statements.save_snapshot,
            snapshot_params(snapshot),
            returns_rows=False,
        )

    # Subscriptions: leases, notifications, transactions, checkpoints and dead letters.

    def lease(self, subscription: str) -> PostgresLease:
        """Return the lease that keeps one instance of `subscription` active."""
        return PostgresLease(self.conninfo, self.schema, subscription)

    def listener(self) -> PostgresListener:
        """Return a context manager that waits for appends (LISTEN/NOTIFY)."""
        return PostgresListener(self.conninfo, self.schema)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection inside a transaction, committed if the block succeeds."""
        try:
            with self.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, PoolTimeout) as error:  # the body's own errors come wrapped
            raise translate(error, "run a subscription's transaction") from error

    def load_checkpoint(self, subscription: str) -> int | None:
        rows = self._fetch(
            f"read the checkpoint of {subscription!r}",
            self._statements.load_checkpoint,
            (subscription,),
        )
        return int(rows[0][0]) if rows else None

    def save_checkpoint(
        self,
        connection: psycopg.Connection[Any],
        subscription: str,
        position: int,
        lease: Lease,
        *,
        previous: int | None,
    ) -> None:
        held = lease if isinstance(lease, PostgresLease) else None
        key_high, key_low = lease_key_halves(held.key) if held is not None else (0, 0)
        cursor = connection.execute(
            self._statements.save_checkpoint,
            {
                "name": subscription,
                "position": position,
                "pid": None if held is None else held.pid,
                "key_high": key_high,
                "key_low": key_low,
                "previous": previous,
            },
        )
        if cursor.rowcount != 1:
            raise LeaseLostError(subscription)

    def park(
        self,
        connection: psycopg.Connection[Any],
        subscription: str,
        event: StoredEvent,
        error: str,
    ) -> None:
        connection.execute(
            self._statements.park,
            (
                subscription,
                event.position,
                event.event_id,
                event.stream_id,
                event.event_type,
                error,
            ),
        )

    def unpark(
        self, connection: psycopg.Connection[Any], subscription: str, position: int | None
    ) -> int:
        cursor = connection.execute(
            self._statements.unpark, {"name": subscription, "position": position}
        )
        return cursor.rowcount

    def parked(self, subscription: str) -> list[ParkedEvent]:
        rows = self._fetch(
            f"list the parked events of {subscription!r}", self._statements.parked, (subscription,)
        )
        return [
            ParkedEvent(
                subscription=row[0],
                position=row[1],
                event_id=row[2],
                stream_id=row[3],
                event_type=row[4],
                error=row[5],
                parked_at=row[6],
            )
            for row in rows
        ]

    def _fetch(
        self, doing: str, query: Query, params: Params, *, returns_rows: bool = True
    ) -> list[Any]:
        def work(conn: psycopg.Connection[Any]) -> list[Any]:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if returns_rows else []

        return self._run(doing, work)

    def _ensure_open(self) -> None:
        if not self._opened:
            # Opening twice is harmless: psycopg_pool ignores a second open().
            self._pool.open(wait=False)
            self._opened = True

    def _run(self, doing: str, work: _Work[T]) -> T:
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
