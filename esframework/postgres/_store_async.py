"""The production event store: PostgreSQL through psycopg 3 and a connection pool.

This module is the source of `_store.py`, which `tools/async_to_sync.py` generates from it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from esframework._checks import (
    DEFAULT_PAGE_SIZE,
    check_append,
    check_expected_version,
    check_read_range,
    check_stream_type,
    match_retry,
    stored_by_id,
    utc_time,
)
from esframework._queries import AppendCondition, Query, QueryResult
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._retention import check_open
from esframework._subscription_store_async import AsyncSubscriptionStore
from esframework.errors import (
    AppendDeadlockError,
    ConcurrencyError,
    ConditionFailedError,
    StoreUnavailableError,
)
from esframework.postgres._archive_async import AsyncArchiving
from esframework.postgres._connection_setup import (
    DEFAULT_LEASE_TIMEOUT,
    application_name,
    pool_conninfo,
    set_lock_timeout,
    set_search_path,
)
from esframework.postgres._connections_async import UNITS, AsyncConnections, OpenUnit
from esframework.postgres._coordination_async import AsyncPostgresLease, AsyncPostgresListener
from esframework.postgres._errors import (
    condition_conflict,
    found_stream_closed,
    translate,
    violated_constraint,
)
from esframework.postgres._keys_async import AsyncPersonalKeys
from esframework.postgres._migrations_async import migrate_async
from esframework.postgres._network import with_network_defaults
from esframework.postgres._sequencer import Sequencer
from esframework.postgres._shared_session_async import AsyncRunnerCoordination
from esframework.postgres._sql import (
    COVERED,
    SEQUENCE_BATCH,
    Statements,
    append_params,
    dcb_locks,
    snapshot_params,
    stream_lock_key,
    to_snapshot,
    to_stored,
)
from esframework.postgres._subscriptions_async import AsyncPostgresSubscriptions

__all__ = ["AsyncPostgresEventStore"]

ANY_VERSION_ATTEMPTS = 5
"""How often an append expecting any version tries before its last conflict is raised."""

STREAM_PAGE_SIZE = 5000
"""Rows per query when reading a stream: one query for most aggregates, bounded memory for all."""


class AsyncPostgresEventStore(
    AsyncConnections,
    AsyncArchiving,
    AsyncPersonalKeys,
    AsyncPostgresSubscriptions,
    AsyncSubscriptionStore[psycopg.AsyncConnection[Any]],
):
    """An event store in PostgreSQL, for production.

    Appends are one statement and one round trip, and take no lock: writers never wait for
    each other unless they append to the same stream. The database enforces stream versions
    and event-id idempotency. Global positions are assigned just after commit, in commit
    order, by a sequencing pass that runs on a thread of the store (see the docs' "global
    order" page). `transaction()` opens a unit of work: appends inside it commit together.
    Create the tables with `migrate()` or `esframework migrate`.

    Args:
        conninfo: A libpq connection string or URL. Give this or `pool`.
        pool: A psycopg_pool pool to use instead; the store does not close it.
        schema: The PostgreSQL schema holding the store's tables.
        min_size: The least connections the store's own pool keeps open.
        max_size: The most connections the store's own pool opens.
        pool_timeout: Seconds to wait for a free connection before `StoreUnavailableError`.
        lock_timeout: Seconds an append waits for another transaction's append to commit
            before failing; bounds how long an append left open elsewhere can stall writers.
            Set on every connection the store uses, pooled or not, either way of connecting.
            Not given: 10 seconds, unless the connection already has a lock_timeout (from
            the connection string's `options`, the pool's settings, the role or the database).
        reconnect_attempts: How often an operation is retried on a fresh connection after
            the connection was lost. Appends are idempotent, so a retried append that had
            committed reports the stored positions instead of failing.
        connect_timeout: Seconds to wait for a new connection. Not given: the connection
            string's `connect_timeout`, or 10.
        tcp_user_timeout: Seconds a request may go unacknowledged by the server's host
            before its connection counts as lost (a network partition). Not given: the
            connection string's `tcp_user_timeout` (in milliseconds), or 20. Keepalives
            (`keepalives_idle=10 keepalives_interval=5 keepalives_count=3`) are on unless
            the connection string sets them. These apply to the store's own pool and to its
            lease, listener and sequencer connections; a pool given to the store keeps the
            settings it was made with.
        statement_timeout: If given, seconds any statement on a pooled connection may run
            before the server cancels it (`statement_timeout`), over the connection's own.
        lease_timeout: Seconds a subscription's lease survives its holder making no
            progress (stopped, frozen, blocked in a handler, cut off by the network): the
            server then ends the lease's session and a standby takes over. A batch that
            takes longer than this loses the lease, so keep it above the slowest batch. A
            transaction on a pooled connection left idle this long (unless the connection
            sets `idle_in_transaction_session_timeout` itself) is ended by the server too:
            a holder stopped mid-batch cannot keep the locks its standby needs.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 10.0,
        lock_timeout: float | None = None,
        reconnect_attempts: int = 3,
        connect_timeout: float | None = None,
        tcp_user_timeout: float | None = None,
        statement_timeout: float | None = None,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        if (conninfo is None) == (pool is None):
            msg = "give the store either a conninfo string or a pool"
            raise ValueError(msg)
        if lock_timeout is not None and lock_timeout < 0:
            msg = f"lock_timeout must be 0 (wait forever) or more seconds, not {lock_timeout}"
            raise ValueError(msg)
        if statement_timeout is not None and statement_timeout < 0:
            msg = f"statement_timeout must be 0 (none) or more seconds, not {statement_timeout}"
            raise ValueError(msg)
        if lease_timeout <= 0:
            msg = f"lease_timeout must be more than 0 seconds, not {lease_timeout}"
            raise ValueError(msg)
        self._lock_timeout = lock_timeout
        self._lease_timeout = lease_timeout
        # A transaction left idle this long is ended by the server: a lease holder stopped
        # mid-batch would otherwise hold the row locks its standby's batches need.
        self._set_lock_timeout = set_lock_timeout(
            lock_timeout, idle_in_transaction=lease_timeout, statement_timeout=statement_timeout
        )
        self._set_search_path = set_search_path(schema)
        # Connections the store has given its settings, so each costs that round trip once.
        self._configured: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()
        self.schema = schema
        # Leases and listeners hold connections of their own, outside the pool.
        self.conninfo = with_network_defaults(
            conninfo or (pool_conninfo(pool.conninfo, pool.kwargs) if pool is not None else ""),
            connect_timeout=connect_timeout,
            tcp_user_timeout=tcp_user_timeout,
        )
        self._statements = Statements(schema)
        self._attempts = reconnect_attempts + 1
        self._owns_pool = pool is None
        self._pool: AsyncConnectionPool[Any] = pool or AsyncConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            # No `options` here: they would replace the connection string's own.
            kwargs={"autocommit": True, "application_name": application_name(schema)},
            open=False,
            name=f"esframework:{schema}",
        )
        self._opened = not self._owns_pool
        self._sequencer = Sequencer(self.conninfo, self._statements)

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Position what this store appended, stop its sequencer and close its own pool (a
        pool given to the store is left open)."""
        await asyncio.to_thread(self._sequencer.close)
        if self._owns_pool:
            await self._pool.close()

    async def migrate(self) -> list[str]:
        """Create or upgrade the store's tables; return the names of the migrations applied."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[str]:
            return [m.name for m in await migrate_async(conn, self.schema)]

        return await self._run("migrate", work)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Lend a pooled connection, for read models kept in the same database."""
        await self._ensure_open()
        async with self._borrow() as conn:
            yield conn

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        expected = check_append(stream_id, stream_type, events, expected_version)
        # The whole append is one turn on a unit's connection: its savepoint, and the
        # unit's own events it passes over and adds to.
        async with self._holding_unit() as unit:
            return await self._append(
                unit, stream_id, stream_type, events, expected=expected, condition=condition
            )

    async def _append(
        self,
        unit: OpenUnit | None,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected: int | None,
        condition: AppendCondition | None,
    ) -> AppendResult:
        lock = stream_lock_key(self.schema, stream_id) if expected is None else None
        own = [] if unit is None or condition is None else unit.own(condition)
        locks = dcb_locks(self.schema, events, condition, own)
        params = append_params(
            stream_id, stream_type, events, expected, locks=locks, stream_lock=lock
        )
        query = self._statements.append(
            len(events), any_version=lock is not None, conditional=condition is not None
        )

        written: list[UUID] = []  # the ids of the events the attempt that answered wrote

        async def attempt(conn: psycopg.AsyncConnection[Any]) -> AppendResult:
            written.clear()
            in_unit = conn is self._unit()
            conflict: int | None = None
            try:
                rows = await _insert(conn, query, params, in_unit)
            except psycopg.Error as error:
                violated = violated_constraint(error)
                closed = found_stream_closed(error)  # the head is a tombstone: see below
                conflict = condition_conflict(error)
                if (
                    violated not in {"events_pkey", "unique_stream_version"}
                    and not closed
                    and conflict is None
                ):
                    if isinstance(error, psycopg.errors.DeadlockDetected):
                        raise AppendDeadlockError(stream_id) from error
                    raise
                await _rollback_if_failed(conn)
                rows = []
                if lock is not None and violated == "unique_stream_version":
                    rows, conflict = await self._append_in_line(conn, lock, query, params)
            if rows:
                written.extend(e.event_id for e in events)
                return AppendResult(stream_id=stream_id, version=rows[-1][0], positions=())
            # Nothing was written: a retry of a committed append (archived events too), or a
            # conflict. A retry is a no-op even if its condition fails now (on its own events).
            ids = [e.event_id for e in events]
            cursor = await conn.execute(self._statements.by_ids, {"ids": ids})
            stored = stored_by_id(map(to_stored, await cursor.fetchall()))
            retry = match_retry(stream_id, stream_type, events, stored)
            if retry is not None:  # positions are never known at append time here
                return retry._replace(positions=())
            if conflict is not None and condition is not None:
                raise self._condition_failed(condition, conflict, stream_id)
            cursor = await conn.execute(self._statements.stream_head, (stream_id,))
            actual, stored_type, last_type = await cursor.fetchone() or (0, None, None)
            check_open(stream_id, last_type, actual)
            check_stream_type(stream_id, stream_type, stored_type)
            check_expected_version(stream_id, expected, actual)
            raise ConcurrencyError(stream_id, expected, actual)  # lost a race for the version

        result = await self._run(f"append to stream {stream_id!r}", attempt)
        if unit is None:  # in a unit of work, the commit wakes the sequencer
            self._sequencer.committed()
        else:  # not a retry's ids: its events are another transaction's, or here already
            unit.appended.extend(written)
        return result

    def _condition_failed(
        self, condition: AppendCondition, conflict: int, stream_id: str
    ) -> ConditionFailedError:
        if conflict == 0:  # not positioned: perhaps left so by a killed process, so the
            self._sequencer.committed()  # next read (a decision's retry) waits for a pass
        return ConditionFailedError(
            condition.fail_if_events_match, condition.after, conflict, stream_id
        )

    async def _append_in_line(
        self, conn: psycopg.AsyncConnection[Any], lock: int, query: bytes, params: list[Any]
    ) -> tuple[list[Any], int | None]:
        """Append expecting any version, after the stream's other such appends.

        The single statement reads the stream's version from a snapshot taken before it
        waited for the stream's lock, so on a busy stream it may pick a version another
        append just took. Taking the lock in a statement of its own first, the append's
        snapshot sees every append before it. It can still lose to an append expecting an
        exact version (which takes no lock); each such loss means the stream moved on, so
        it tries again, a bounded number of times.

        Returns the rows inserted, and the first conflicting position if its condition
        failed on the way. No rows if some event id is stored meanwhile (a racing append of
        the same batch committed first), the condition failed or the stream is closed: the
        caller then decides, from what is stored, which.
        """
        for attempt in range(1, ANY_VERSION_ATTEMPTS + 1):
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                    cursor = await conn.execute(query, params)
                    return await cursor.fetchall(), None
            except psycopg.errors.RestrictViolation as error:
                conflict = condition_conflict(error)
                if conflict is None and not found_stream_closed(error):
                    raise
                await _rollback_if_failed(conn)
                return [], conflict  # the caller says which
            except psycopg.errors.UniqueViolation as error:
                violated = violated_constraint(error)
                if violated == "unique_stream_version" and attempt == ANY_VERSION_ATTEMPTS:
                    raise
                if violated not in {"events_pkey", "unique_stream_version"}:
                    raise
                await _rollback_if_failed(conn)
                if violated == "events_pkey":
                    return [], None
        return [], None  # not reached: the last attempt returns or raises

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> AsyncIterator[StoredEvent]:
        query = (
            self._statements.read_archived_stream
            if include_archived
            else self._statements.read_stream
        )
        last = 2**62 if to_version is None else to_version
        while True:
            rows = await self._fetch(
                f"read stream {stream_id!r}",
                query,
                {"id": stream_id, "first": from_version, "last": last, "limit": STREAM_PAGE_SIZE},
            )
            for row in rows:
                yield to_stored(row)
            if len(rows) < STREAM_PAGE_SIZE:
                return
            from_version = rows[-1][7] + 1
            # The next pages go on from there, wherever the events are: a truncation (and
            # an archive pass) since the first page must not open a gap in the read.
            query = self._statements.read_archived_stream

    async def read_payloads(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> AsyncIterator[EventPayload]:
        query = (
            self._statements.read_archived_payloads
            if include_archived
            else self._statements.read_payloads
        )
        last = 2**62 if to_version is None else to_version
        while True:
            rows = await self._fetch(
                f"read stream {stream_id!r}",
                query,
                {"id": stream_id, "first": from_version, "last": last, "limit": STREAM_PAGE_SIZE},
            )
            for row in rows:
                yield EventPayload._make(row)
            if len(rows) < STREAM_PAGE_SIZE:
                return
            from_version = rows[-1][1] + 1
            # The next pages go on from there, wherever the events are: a truncation (and
            # an archive pass) since the first page must not open a gap in the read.
            query = self._statements.read_archived_payloads

    async def stream_version(self, stream_id: str) -> int:
        rows = await self._fetch(
            f"read stream {stream_id!r}", self._statements.stream_version, (stream_id,)
        )
        return int(rows[0][0])

    async def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        check_read_range("read_all", after, limit, unlimited=False)
        query, params = self._statements.read_all(after, limit, stream_types, event_types)
        await self._read_own_writes()
        rows = await self._fetch(f"read events after position {after}", query, params)
        return list(map(to_stored, rows))

    async def read_query(
        self, query: Query, *, after: int = 0, limit: int | None = None
    ) -> QueryResult:
        check_read_range("read_query", after, limit, unlimited=True)
        statement, params, prepare = self._statements.read_query(query, after, limit)
        await self._read_own_writes()
        # One turn on a unit's connection: the read, and the unit's own events it returns.
        async with self._holding_unit() as unit:
            rows = await self._fetch(
                f"read the events of {query}", statement, params, prepare=prepare
            )
            head = int(rows[0][0])
            events = [to_stored(row[1:]) for row in rows if row[1] is not None]
            if limit is not None and len(events) == limit:
                # Cut short: seen up to the last event read (with limit 0, nothing past `after`).
                head = events[-1].position if events else after
            elif unit is not None and unit.appended:
                events += await self._own_events(unit, query, limit, len(events))
        return QueryResult(events, max(head, after))

    async def _own_events(
        self, unit: OpenUnit, query: Query, limit: int | None, read: int
    ) -> list[StoredEvent]:
        """The open unit's own events that `query` matches, after those already read.

        They have no position until the unit commits (0 here), and come after every
        positioned event, as their positions will. A condition built from this read passes
        over them (`QueryResult.condition`): the decision saw them.
        """
        ids = unit.appended
        rows = await self._fetch(
            "read the unit's own events", self._statements.by_ids, {"ids": ids}
        )
        order = {event_id: n for n, event_id in enumerate(ids)}
        own = sorted(
            (e for e in map(to_stored, rows) if e.position == 0),
            key=lambda e: order[e.event_id],
        )
        matching = [e for e in own if query.matches(e.event_type, e.tags)]
        room = len(matching) if limit is None else limit - read
        return matching[:room]

    async def head(self) -> int:
        await self._read_own_writes()
        rows = await self._fetch("read the head position", self._statements.head, None)
        return int(rows[0][0])

    async def version_at(self, stream_id: str, as_of: datetime) -> int:
        params = {"stream": stream_id, "as_of": utc_time(as_of)}
        rows = await self._fetch(f"read stream {stream_id!r}", self._statements.version_at, params)
        return int(rows[0][0])

    async def position_at(self, as_of: datetime) -> int:
        params = {"as_of": utc_time(as_of)}
        await self._read_own_writes()
        rows = await self._fetch(
            "read the position as of a time", self._statements.position_at, params
        )
        return int(rows[0][0])

    async def stored_event_types(self) -> frozenset[str]:
        rows = await self._fetch(
            "read the stored event types", self._statements.stored_event_types, None
        )
        return frozenset(name for (name,) in rows)

    async def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        rows = await self._fetch(
            f"read the snapshot of {stream_id!r}", self._statements.load_snapshot, (stream_id,)
        )
        return to_snapshot(stream_id, rows[0]) if rows else None

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        async with self._holding_unit() as unit:
            conn = None if unit is None else unit.connection
            if conn is not None:  # a failed snapshot must not abort the unit of work around it
                try:
                    async with conn.transaction():
                        await conn.execute(
                            self._statements.save_snapshot, snapshot_params(snapshot)
                        )
                except psycopg.Error as error:
                    raise translate(error, f"snapshot {snapshot.stream_id!r}") from error
                return
        await self._fetch(
            f"snapshot {snapshot.stream_id!r}",
            self._statements.save_snapshot,
            snapshot_params(snapshot),
            returns_rows=False,
        )

    async def sequence(self) -> int:
        """Position every committed event that has no global position yet, now.

        The store's sequencer does this on its own just after each commit; call it to be
        sure (in tests, or before reading a store that a killed process appended to).
        Waits for a pass another process is running. Returns how many events it positioned.
        """

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            total = 0
            while True:
                cursor = await conn.execute(self._statements.sequence, (SEQUENCE_BATCH, True))
                row = await cursor.fetchone()
                positioned = int(row[0]) if row is not None else 0
                if positioned == COVERED:  # another process's pass did it
                    return total
                total += positioned
                if positioned < SEQUENCE_BATCH:
                    return total

        return await self._run("position events", work)

    async def unpositioned(self) -> int:
        """Return how many committed events wait for a global position (a health figure:
        it stays near 0 while some store's sequencer runs)."""
        rows = await self._fetch("count unpositioned events", self._statements.unpositioned, None)
        return int(rows[0][0])

    async def _read_own_writes(self) -> None:
        # A global read sees what this store appended before it: wait for the pass.
        if self._sequencer.behind():
            await asyncio.to_thread(self._sequencer.wait_caught_up)

    # Subscriptions: leases, notifications, transactions; checkpoints and dead letters are
    # `AsyncPostgresSubscriptions'`.

    def lease(self, subscription: str) -> AsyncPostgresLease:
        """Return the lease that keeps one instance of `subscription` active."""
        return AsyncPostgresLease(
            self.conninfo,
            self.schema,
            subscription,
            lock_timeout=self._lock_timeout,
            timeout=self._lease_timeout,
        )

    def listener(self) -> AsyncPostgresListener:
        """Return a context manager that waits for appends (LISTEN/NOTIFY)."""
        return AsyncPostgresListener(self.conninfo, self.schema, lock_timeout=self._lock_timeout)

    def runner_coordination(self) -> AsyncRunnerCoordination:
        """Return one lease session and one listener for all the subscriptions of a runner."""
        return AsyncRunnerCoordination(
            self.conninfo, self.schema, lock_timeout=self._lock_timeout, timeout=self._lease_timeout
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Open a unit of work: the store's calls in this block join one transaction.

        Appends to several streams (`repository.save(a)`, `repository.save(b)`) commit
        together or not at all, each with its own optimistic concurrency check, and read
        models written through the lent connection commit with them. It takes no lock:
        other writers go on while it is open, except those appending to a stream it
        appended to, which wait for it to end. Entered again while open (in the same thread
        or task), it joins the open one. Their positions are assigned after the commit.
        The lent connection's search_path starts with the store's schema, so read-model
        tables named without a schema are the store's.

        Raises:
            StoreError: The transaction could not commit; nothing in it was written.
            StoreUnavailableError: The connection was lost (also when the block raised
                something else meanwhile: the block's error is the cause).
        """
        joined = self._unit()
        if joined is not None:
            yield joined
            return
        try:
            async with self.connection() as conn:
                try:
                    async with conn.transaction():
                        await conn.execute(self._set_search_path)
                        unit = OpenUnit(conn)
                        token = UNITS.set({**UNITS.get(), id(self): unit})
                        try:
                            yield conn
                        finally:  # after the call of a task still in it, if one is
                            await unit.end()
                            UNITS.reset(token)
                except Exception as error:
                    if conn.broken and not isinstance(error, StoreUnavailableError):
                        # Whatever the body raised (the server's error, or a handler's own
                        # error wrapping it), the connection is gone and the unit with it:
                        # that is the failure to report, so that callers retry instead of
                        # blaming what the body was doing.
                        raise StoreUnavailableError(
                            "could not finish a unit of work: the connection was lost"
                        ) from error
                    raise
        except (psycopg.Error, PoolTimeout) as error:  # the body's own errors come wrapped
            raise translate(error, "commit a unit of work") from error
        self._sequencer.committed()


async def _insert(
    conn: psycopg.AsyncConnection[Any], query: bytes, params: list[Any], in_unit: bool
) -> list[Any]:
    if not in_unit:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall()
    # Inside a unit of work, a failed insert must not abort the whole transaction: the
    # savepoint keeps it usable for the idempotency and version checks that follow.
    async with conn.transaction():
        cursor = await conn.execute(query, params)
        return await cursor.fetchall()


async def _rollback_if_failed(conn: psycopg.AsyncConnection[Any]) -> None:
    # With a pool of non-autocommit connections, the failed statement aborted a transaction.
    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        await conn.rollback()
