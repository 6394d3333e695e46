"""The embedded event store: one SQLite file, stdlib `sqlite3`, WAL journal."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from uuid import UUID

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
from esframework._queries import (
    AppendCondition,
    Query,
    QueryResult,
    stored_tags,
)
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._retention import check_open
from esframework._sqlite_errors import SQLiteErrors
from esframework._sqlite_keys import SQLitePersonalKeys
from esframework._sqlite_lease import DEFAULT_LEASE_TIMEOUT, SQLiteLease
from esframework._sqlite_queries import (
    first_conflict,
    insert_tags,
    query_page,
    tags_column,
    tags_of,
)
from esframework._sqlite_readers import ReaderPool, is_private
from esframework._sqlite_retention import (
    COLUMNS,
    SQLiteArchiving,
    global_page,
    stored_or_archived,
    stream_page,
)
from esframework._sqlite_schema import SCHEMA
from esframework._sqlite_subscriptions import PollingListener, SQLiteSubscriptions
from esframework._subscription_store import SubscriptionStore
from esframework.errors import (
    ConditionFailedError,
    LeaseLostError,
    StoreError,
    StoreUnavailableError,
)

__all__ = ["SQLiteEventStore"]

_COLUMNS: Final = COLUMNS
_PAYLOAD_COLUMNS: Final = (
    "stream_id, version, global_position, event_type, schema_version, event_data, stream_type"
)


# A loose index scan: each step asks the event-type index for the next name after the last,
# so the cost grows with the number of distinct names, not of events. Run on each table.
_DISTINCT_EVENT_TYPES: Final = """
    WITH RECURSIVE names(name) AS (
        SELECT min(event_type) FROM {table}
        UNION ALL
        SELECT (SELECT min(event_type) FROM {table} WHERE event_type > names.name)
        FROM names WHERE names.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL
"""


def _to_stored(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        event_id=UUID(row[0]),
        stream_id=row[1],
        stream_type=row[2],
        event_type=row[3],
        schema_version=row[4],
        data=row[5],
        metadata=row[6],
        version=row[7],
        position=row[8],
        recorded_at=datetime.fromisoformat(row[9]),
        tags=tags_of(row[10]),
    )


class SQLiteEventStore(
    SQLiteArchiving,
    SQLitePersonalKeys,
    SQLiteSubscriptions,
    SubscriptionStore[sqlite3.Connection],
):
    """An event store in one SQLite file: the embedded default.

    Several threads may share one store, and several processes may open the same file: each
    append takes SQLite's write lock (`BEGIN IMMEDIATE`), so positions follow commit order.
    The file is created, and its tables with it, on first use.

    Args:
        path: The database file (``":memory:"`` for a private in-memory database).
        timeout: Seconds to wait for another process's write lock before failing. (Threads
            of one process take turns on the store's connection for writes; a read while
            another thread holds it, as in a subscription batch, runs on a read connection
            and sees the last committed state.)
        synchronous: SQLite's `synchronous` setting. ``"FULL"`` (the default) makes every
            commit durable across power loss; ``"NORMAL"`` is faster and durable across
            application crashes only.
        lease_timeout: Seconds a subscription's lease survives its holder making no
            progress (stopped, frozen, blocked): a standby then takes over. A batch that
            takes longer than this loses the lease, so keep it above the slowest batch.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = 10.0,
        synchronous: str = "FULL",
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            msg = f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}"
            raise ValueError(msg)
        if lease_timeout <= 0:
            msg = f"lease_timeout must be more than 0 seconds, not {lease_timeout}"
            raise ValueError(msg)
        self.path = str(path)
        self._timeout = timeout
        self._lease_timeout = lease_timeout
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._readers = ReaderPool(self.path, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._readers.close()

    def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        expected = check_append(stream_id, stream_type, events, expected_version)
        with self._writing("append to", stream_id) as db:
            return self._append_locked(
                db, stream_id, stream_type, events, expected, condition=condition
            )

    @contextmanager
    def _writing(self, action: str, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction on the store's connection (a savepoint inside an open one).

        Inside a subscription's transaction (a handler issuing commands), a write joins it:
        it commits with the checkpoint, or not at all.
        """
        with self._lock, self._errors(action, what):
            db = self._db()
            nested = db.in_transaction
            db.execute("SAVEPOINT esframework_write" if nested else "BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if nested:
                    db.execute("ROLLBACK TO esframework_write")
                    db.execute("RELEASE esframework_write")
                else:
                    db.execute("ROLLBACK")
                raise
            db.execute("RELEASE esframework_write" if nested else "COMMIT")

    def _append_locked(
        self,
        db: sqlite3.Connection,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        expected: int | None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        ids = [str(e.event_id) for e in events]
        stored = stored_or_archived(db, ids, _to_stored)  # archived ids stay taken
        retry = match_retry(stream_id, stream_type, events, stored_by_id(stored))
        if retry is not None:
            return retry
        # The stream's last event gives its version, its type and whether it is closed (one
        # index probe).
        last = db.execute(
            "SELECT version, stream_type, event_type FROM events WHERE stream_id = ? "
            "ORDER BY version DESC LIMIT 1",
            (stream_id,),
        ).fetchone()
        actual, stored_type, last_type = last if last is not None else (0, None, None)
        check_open(stream_id, last_type, actual)
        check_stream_type(stream_id, stream_type, stored_type)
        check_expected_version(stream_id, expected, actual)
        if condition is not None:
            query = condition.fail_if_events_match
            conflict = first_conflict(db, query, condition.after)
            if conflict is not None:
                raise ConditionFailedError(query, condition.after, conflict, stream_id)
        now = datetime.now(UTC).isoformat()
        tags = [stored_tags(e.tags) for e in events]
        db.executemany(
            "INSERT INTO events (id, stream_id, stream_type, event_type, schema_version, "
            "event_data, metadata, version, created_at, tags) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    ids[i],
                    stream_id,
                    stream_type,
                    e.event_type,
                    e.schema_version,
                    e.data,
                    e.metadata,
                    actual + 1 + i,
                    now,
                    tags_column(tags[i]),
                )
                for i, e in enumerate(events)
            ],
        )
        positions = tuple(
            p
            for (p,) in db.execute(
                "SELECT global_position FROM events WHERE stream_id = ? AND version > ? "
                "ORDER BY version",
                (stream_id, actual),
            )
        )
        if any(tags):
            insert_tags(
                db, [(p, e.event_type, t) for p, e, t in zip(positions, events, tags, strict=True)]
            )
        return AppendResult(stream_id=stream_id, version=actual + len(events), positions=positions)

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> Iterator[StoredEvent]:
        last = to_version if to_version is not None else 2**62
        while True:
            with self._reading() as db, self._errors("read", stream_id):
                rows = stream_page(
                    db,
                    _COLUMNS,
                    stream_id,
                    first=from_version,
                    last=last,
                    limit=DEFAULT_PAGE_SIZE,
                    include_archived=include_archived,
                )
            yield from map(_to_stored, rows)
            if len(rows) < DEFAULT_PAGE_SIZE:
                return
            from_version = rows[-1][7] + 1
            # The next pages go on from there, wherever the events are: a truncation (and
            # an archive pass) since the first page must not open a gap in the read.
            include_archived = True

    def read_payloads(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> Iterator[EventPayload]:
        last = to_version if to_version is not None else 2**62
        while True:
            with self._reading() as db, self._errors("read", stream_id):
                rows = stream_page(
                    db,
                    _PAYLOAD_COLUMNS,
                    stream_id,
                    first=from_version,
                    last=last,
                    limit=DEFAULT_PAGE_SIZE,
                    include_archived=include_archived,
                )
            yield from map(EventPayload._make, rows)
            if len(rows) < DEFAULT_PAGE_SIZE:
                return
            from_version = rows[-1][1] + 1
            # The next pages go on from there, wherever the events are: a truncation (and
            # an archive pass) since the first page must not open a gap in the read.
            include_archived = True

    def stream_version(self, stream_id: str) -> int:
        with self._reading() as db, self._errors("read", stream_id):
            (version,) = db.execute(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?",
                (stream_id,),
            ).fetchone()
        return int(version)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        check_read_range("read_all", after, limit, unlimited=False)
        where = "global_position > ?"
        params: list[Any] = [after]
        for column, values in (("stream_type", stream_types), ("event_type", event_types)):
            if values is not None:
                where += f" AND {column} IN ({','.join('?' * len(values))})"
                params.extend(values)
        with self._reading() as db, self._errors("read", f"position {after}"):
            return list(map(_to_stored, global_page(db, where, params, limit)))

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryResult:
        check_read_range("read_query", after, limit, unlimited=True)
        with self._reading() as db, self._errors("read", f"the events of {query}"):
            return query_page(db, query, after, limit, _to_stored)

    def head(self) -> int:
        with self._reading() as db, self._errors("read", "the head"):
            (position,) = db.execute(
                "SELECT coalesce(max(global_position), 0) FROM events"
            ).fetchone()
        return int(position)

    def version_at(self, stream_id: str, as_of: datetime) -> int:
        recorded = utc_time(as_of).isoformat()  # the form appends record: it sorts as text
        with self._reading() as db, self._errors("read", stream_id):
            # The archived events too: the first event after the time may be one of them.
            # The stream's last event never leaves `events`.
            (version,) = db.execute(
                "SELECT coalesce((SELECT min(version) - 1 FROM ("
                "SELECT min(version) AS version FROM events "
                "WHERE stream_id = ?1 AND created_at > ?2 UNION ALL "
                "SELECT min(version) FROM events_archive "
                "WHERE stream_id = ?1 AND created_at > ?2)), "
                "(SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1))",
                (stream_id, recorded),
            ).fetchone()
        return int(version)

    def position_at(self, as_of: datetime) -> int:
        recorded = utc_time(as_of).isoformat()
        with self._reading() as db, self._errors("read", "the position as of a time"):
            (position,) = db.execute(
                "SELECT coalesce((SELECT min(position) - 1 FROM ("
                "SELECT min(global_position) AS position FROM events WHERE created_at > ?1 "
                "UNION ALL SELECT min(global_position) FROM events_archive "
                "WHERE created_at > ?1)), "
                "(SELECT coalesce(max(global_position), 0) FROM events))",
                (recorded,),
            ).fetchone()
        return int(position)

    def stored_event_types(self) -> frozenset[str]:
        with self._reading() as db, self._errors("read", "the stored event types"):
            rows = [
                row
                for table in ("events", "events_archive")
                for row in db.execute(_DISTINCT_EVENT_TYPES.format(table=table))
            ]
        return frozenset(name for (name,) in rows)

    def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        with self._reading() as db, self._errors("read the snapshot of", stream_id):
            row = db.execute(
                "SELECT stream_type, state_schema, version, snapshot_data "
                "FROM snapshots WHERE stream_id = ?",
                (stream_id,),
            ).fetchone()
        if row is None:
            return None
        return SnapshotRecord(
            stream_id=stream_id,
            stream_type=row[0],
            state_schema=row[1],
            version=row[2],
            data=row[3],
        )

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        with self._lock, self._errors("snapshot", snapshot.stream_id):
            # An older snapshot (from a slower writer) never replaces a newer one.
            self._db().execute(
                "INSERT INTO snapshots (stream_id, stream_type, snapshot_data, version, "
                "state_schema, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (stream_id) DO UPDATE SET stream_type = excluded.stream_type, "
                "snapshot_data = excluded.snapshot_data, version = excluded.version, "
                "state_schema = excluded.state_schema, created_at = excluded.created_at "
                "WHERE excluded.version >= snapshots.version",
                (
                    snapshot.stream_id,
                    snapshot.stream_type,
                    snapshot.data,
                    snapshot.version,
                    snapshot.state_schema,
                    datetime.now(UTC).isoformat(),
                ),
            )

    # Subscriptions: leases, polling, transactions and checkpoints; `SQLiteSubscriptions`
    # has the rest.

    def lease(self, subscription: str) -> SQLiteLease:
        """Return the lease that keeps one instance of `subscription` active."""
        return SQLiteLease(self, subscription, self._lease_timeout)

    def listener(self) -> PollingListener:
        """Return a context manager that waits until the head moves (SQLite has no NOTIFY)."""
        return PollingListener(self)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Lend the store's connection inside a write transaction, committed if the block
        succeeds.

        It is the store's unit of work: events appended through this store by the same
        thread meanwhile commit with it, and read models kept in the same file are written
        through it (a subscription's checkpoint too). Other threads' writes wait until it
        ends; their reads see the last committed state meanwhile. Opened again inside the
        block, it joins the open one.
        """
        with self._lock:
            joined = self._db()
            if joined.in_transaction:  # this thread's own (it holds the store): join it
                yield joined
                return
        connection = self.begin()
        try:
            yield connection
        except BaseException:
            self.end(connection, commit=False)
            raise
        self.end(connection, commit=True)

    def begin(self) -> sqlite3.Connection:
        """Start a write transaction on the store's connection (see `transaction`).

        The calling thread holds the store until `end`; the store's own calls from that
        thread (a handler's commands) join the transaction.
        """
        self._lock.acquire()
        try:
            connection = self._db()
            with self._errors("begin a transaction on", "the store"):
                connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return connection

    def end(self, connection: sqlite3.Connection, *, commit: bool) -> None:
        """Commit or roll back a transaction from `begin`, and release the store.

        A commit that fails rolls back, so the connection never stays inside a transaction
        that later calls would join.
        """
        try:
            with self._errors("commit a transaction on", "the store"):
                try:
                    connection.execute("COMMIT" if commit else "ROLLBACK")
                finally:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
        finally:
            self._lock.release()

    def save_checkpoint(
        self,
        connection: sqlite3.Connection,
        subscription: str,
        position: int,
        lease: object,
        *,
        previous: int | None,
    ) -> None:
        """Move the checkpoint, in the handler's transaction, from `previous` to `position`.

        Fenced twice: only while `lease` is held by its instance (checked in this write
        transaction, which SQLite serializes with a standby's takeover), and only from the
        position this instance last saw.

        Raises:
            LeaseLostError: Another instance took the lease, or moved the checkpoint.
        """
        holder = lease.holder if isinstance(lease, SQLiteLease) else None
        cursor = connection.execute(
            "INSERT INTO subscription_checkpoints (subscription_id, last_position, updated_at) "
            "SELECT ?, ?, ? WHERE ? IS NULL OR EXISTS (SELECT 1 FROM subscription_leases "
            "WHERE subscription_id = ? AND holder = ?) ON CONFLICT (subscription_id) DO UPDATE "
            "SET last_position = excluded.last_position, updated_at = excluded.updated_at "
            "WHERE subscription_checkpoints.last_position IS ?",
            (
                subscription,
                position,
                datetime.now(UTC).isoformat(),
                holder,
                subscription,
                holder,
                previous,
            ),
        )
        if cursor.rowcount != 1:
            raise LeaseLostError(subscription)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection a read runs on: the store's own, unless another thread holds it.

        Then a reader connection sees the last committed state, instead of waiting for the
        other thread's transaction (a whole subscription batch) to end. A private in-memory
        database has no second connection: its reads wait.
        """
        if self._lock.acquire(blocking=not self._shareable()):
            try:
                yield self._db()
            finally:
                self._lock.release()
            return
        with self._readers.reader() as reader:
            yield reader

    def _shareable(self) -> bool:
        # The store's connection exists once the schema does: a reader never sees a file
        # whose tables are still being created.
        return self._connection is not None and not is_private(self.path)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> sqlite3.Connection:
        try:  # a missing folder, or a path that is a folder, fails here
            db = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"cannot open SQLite store {self.path}: {error}") from error
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Freed bytes (a forgotten subject's key, a rewritten read model row) are zeroed.
            db.execute("PRAGMA secure_delete = ON")
            # A file with every table already is only read: setting `user_version` again, in
            # a write transaction, would rewrite its header on every open, a read's too.
            (applied,) = db.execute("PRAGMA user_version").fetchone()
            if applied != len(SCHEMA):
                db.execute("BEGIN IMMEDIATE")  # another process may be creating them too
                (applied,) = db.execute("PRAGMA user_version").fetchone()
                if applied > len(SCHEMA):
                    db.close()
                    msg = f"SQLite store {self.path} was written by a newer esframework release"
                    raise StoreError(msg)
                for statement in SCHEMA[applied:]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {len(SCHEMA)}")
                db.execute("COMMIT")
        except sqlite3.Error as error:
            db.close()
            raise StoreUnavailableError(f"cannot open SQLite store {self.path}: {error}") from error
        return db

    def _errors(self, action: str, what: str) -> SQLiteErrors:
        return SQLiteErrors(f"could not {action} {what!s} in SQLite store {self.path}")
