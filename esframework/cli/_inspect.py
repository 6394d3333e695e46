"""Read-only queries the commands need beyond the store's API, for each durable store.

Each runs on a connection of its own (read-only on SQLite) and walks an index: streams one
distinct stream id at a time over the `(stream_id, version)` constraint's index, so a page
of streams costs a page of index probes however many events the store holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString, NamedTuple, Protocol

from esframework._records import SnapshotRecord


class StreamRow(NamedTuple):
    stream_id: str
    stream_type: str
    version: int
    last_recorded_at: datetime


class CheckpointRow(NamedTuple):
    subscription: str
    position: int | None
    updated_at: datetime | None


class Inspector(Protocol):
    def streams(
        self, *, stream_type: str | None, prefix: str, after: str, limit: int
    ) -> list[StreamRow]: ...

    def recorded_at(self, position: int) -> datetime | None:
        """When the event at `position` was recorded (None: no event there)."""
        ...

    def checkpoints(self) -> list[CheckpointRow]:
        """Every subscription with a checkpoint or parked events, by name."""
        ...

    def parked_counts(self) -> dict[str, int]: ...

    def lease_holder(self, subscription: str) -> str | None:
        """Who holds the subscription's lease, as far as the store can tell; None: nobody."""
        ...

    def snapshots(self, *, after: str, limit: int) -> list[SnapshotRecord]: ...

    def close(self) -> None: ...


# One step of the walk: the next stream id, then that stream's last event (one probe each).
# The recursion stops at the page's end (LIMIT) or past the prefix: SQLite compares text
# byte by byte, so the ids with one prefix are contiguous in the index.
_SQLITE_STREAMS: LiteralString = """
    WITH RECURSIVE ids(sid) AS (
        SELECT min(stream_id) FROM events WHERE stream_id > :after AND stream_id >= :prefix
        UNION ALL
        SELECT (SELECT min(stream_id) FROM events WHERE stream_id > ids.sid)
        FROM ids WHERE ids.sid IS NOT NULL AND substr(ids.sid, 1, length(:prefix)) = :prefix
    )
    SELECT sid, stream_type, version, created_at FROM (
        SELECT sid,
            (SELECT stream_type FROM events WHERE stream_id = sid
             ORDER BY version DESC LIMIT 1) AS stream_type,
            (SELECT version FROM events WHERE stream_id = sid
             ORDER BY version DESC LIMIT 1) AS version,
            (SELECT created_at FROM events WHERE stream_id = sid
             ORDER BY version DESC LIMIT 1) AS created_at
        FROM ids WHERE sid IS NOT NULL AND substr(sid, 1, length(:prefix)) = :prefix
    )
    WHERE :stream_type IS NULL OR stream_type = :stream_type
    LIMIT :limit
"""


class SQLiteInspector:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)

    def close(self) -> None:
        self._db.close()

    def streams(
        self, *, stream_type: str | None, prefix: str, after: str, limit: int
    ) -> list[StreamRow]:
        rows = self._db.execute(
            _SQLITE_STREAMS,
            {"after": after, "prefix": prefix, "stream_type": stream_type, "limit": limit},
        )
        return [StreamRow(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    def recorded_at(self, position: int) -> datetime | None:
        row = self._db.execute(
            "SELECT created_at FROM events WHERE global_position = ?", (position,)
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self._db.execute(
            "SELECT n.name, c.last_position, c.updated_at FROM ("
            "SELECT subscription_id AS name FROM subscription_checkpoints UNION "
            "SELECT DISTINCT subscription_id FROM subscription_dead_letters) AS n "
            "LEFT JOIN subscription_checkpoints AS c ON c.subscription_id = n.name ORDER BY n.name"
        )
        return [
            CheckpointRow(r[0], r[1], None if r[2] is None else datetime.fromisoformat(r[2]))
            for r in rows
        ]

    def parked_counts(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT subscription_id, count(*) FROM subscription_dead_letters "
            "GROUP BY subscription_id"
        )
        return dict(rows)

    def lease_holder(self, subscription: str) -> str | None:
        # The lease is a lock on a file beside the database (see SQLiteLease): try it.
        digest = hashlib.sha256(subscription.encode()).hexdigest()[:16]
        lease = f"{self._path}-lease-{digest}"
        try:
            descriptor = os.open(lease, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "a process on this host"
        finally:
            os.close(descriptor)  # closing releases the lock if this process took it
        return None

    def snapshots(self, *, after: str, limit: int) -> list[SnapshotRecord]:
        rows = self._db.execute(
            "SELECT stream_id, stream_type, state_schema, version, snapshot_data "
            "FROM snapshots WHERE stream_id > ? ORDER BY stream_id LIMIT ?",
            (after, limit),
        )
        return [_snapshot(r) for r in rows]


def _snapshot(row: Any) -> SnapshotRecord:
    return SnapshotRecord(
        stream_id=row[0], stream_type=row[1], state_schema=row[2], version=row[3], data=row[4]
    )


# PostgreSQL compares text by the column's collation, under which ids with one prefix need
# not be contiguous: the walk filters by prefix but runs to the page's end.
_POSTGRES_STREAMS: LiteralString = """
    WITH RECURSIVE ids AS (
        (SELECT stream_id AS id FROM {s}.events
         WHERE stream_id > %(after)s AND stream_id >= %(prefix)s ORDER BY stream_id LIMIT 1)
        UNION ALL
        SELECT (SELECT stream_id FROM {s}.events WHERE stream_id > ids.id
                ORDER BY stream_id LIMIT 1)
        FROM ids WHERE ids.id IS NOT NULL
    )
    SELECT ids.id, last.stream_type, last.version, last.created_at
    FROM ids CROSS JOIN LATERAL (
        SELECT stream_type, version, created_at FROM {s}.events
        WHERE stream_id = ids.id ORDER BY version DESC LIMIT 1
    ) AS last
    WHERE starts_with(ids.id, %(prefix)s)
      AND (%(stream_type)s::text IS NULL OR last.stream_type = %(stream_type)s::text)
    LIMIT %(limit)s
"""


class PostgresInspector:
    def __init__(self, dsn: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        self._sql = sql
        self._schema = schema
        self._db = psycopg.connect(dsn, autocommit=True)

    def close(self) -> None:
        self._db.close()

    def _rows(self, query: LiteralString, params: Any = None) -> list[Any]:
        composed = self._sql.SQL(query).format(s=self._sql.Identifier(self._schema))
        return self._db.execute(composed, params).fetchall()

    def streams(
        self, *, stream_type: str | None, prefix: str, after: str, limit: int
    ) -> list[StreamRow]:
        params = {"after": after, "prefix": prefix, "stream_type": stream_type, "limit": limit}
        return [StreamRow(*r) for r in self._rows(_POSTGRES_STREAMS, params)]

    def recorded_at(self, position: int) -> datetime | None:
        rows = self._rows(
            "SELECT created_at FROM {s}.events WHERE global_position = %s", (position,)
        )
        return rows[0][0] if rows else None

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self._rows(
            "SELECT n.name, c.last_position, c.updated_at FROM ("
            "SELECT subscription_id AS name FROM {s}.subscription_checkpoints UNION "
            "SELECT subscription_id FROM {s}.subscription_dead_letters) AS n "
            "LEFT JOIN {s}.subscription_checkpoints AS c ON c.subscription_id = n.name "
            "ORDER BY n.name"
        )
        return [CheckpointRow(*r) for r in rows]

    def parked_counts(self) -> dict[str, int]:
        rows = self._rows(
            "SELECT subscription_id, count(*) FROM {s}.subscription_dead_letters "
            "GROUP BY subscription_id"
        )
        return dict(rows)

    def lease_holder(self, subscription: str) -> str | None:
        # The lease is a session advisory lock (see PostgresLease): find its session.
        from esframework.postgres._sql import lease_key, lease_key_halves

        high, low = lease_key_halves(lease_key(self._schema, subscription))
        rows = self._db.execute(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
            "FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid "
            "AND l.objid = %s::oid AND l.objsubid = 1 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (high, low),
        ).fetchall()
        if not rows:
            return None
        pid, name, address, since = rows[0]
        where = "local socket" if address is None else str(address)
        return f"pid {pid} ({name or 'no name'}, {where}, since {since:%Y-%m-%d %H:%M:%S})"

    def snapshots(self, *, after: str, limit: int) -> list[SnapshotRecord]:
        rows = self._rows(
            "SELECT stream_id, stream_type, state_schema, version, snapshot_data::text "
            "FROM {s}.snapshots WHERE stream_id > %s ORDER BY stream_id LIMIT %s",
            (after, limit),
        )
        return [_snapshot(r) for r in rows]
