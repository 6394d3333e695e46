"""The SQLite store's statements for truncated, closed and archived streams.

The archive is a table with the columns of `events`, positions and all: archiving a batch
copies the truncated part of some streams into it and deletes the copies from `events`, in
one write transaction. The triggers of `SCHEMA` (in `_sqlite_schema`) allow that delete and
nothing else: a row leaves `events` only once the archive holds it, unchanged, and the
archive takes only rows before their stream's truncation point.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson

from esframework._checks import validate_stream_id
from esframework._records import StoredEvent
from esframework._retention import check_truncation

__all__ = [
    "ARCHIVABLE",
    "COLUMNS",
    "RETENTION_SCHEMA",
    "SQLiteArchiving",
    "archive_batch",
    "global_page",
    "stored_or_archived",
    "stream_page",
]

# Appended to `_sqlite_schema.SCHEMA` (applied once per file, in order: never edit these).
RETENTION_SCHEMA: Final = (
    """
    CREATE TABLE stream_truncations (
        stream_id TEXT PRIMARY KEY,
        before_version INTEGER NOT NULL CHECK (before_version >= 1),
        archived_before INTEGER NOT NULL DEFAULT 1,
        truncated_at TEXT NOT NULL,
        archived_at TEXT
    )
    """,
    """
    CREATE INDEX idx_stream_truncations_to_archive ON stream_truncations(stream_id)
    WHERE archived_before < before_version
    """,
    # The columns of `events`; positions are kept, so AUTOINCREMENT in `events` never hands
    # out an archived one again.
    """
    CREATE TABLE events_archive (
        global_position INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        stream_id TEXT NOT NULL,
        stream_type TEXT NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        event_data TEXT NOT NULL,
        metadata TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        CONSTRAINT unique_archived_stream_version UNIQUE (stream_id, version)
    )
    """,
    "CREATE INDEX idx_events_archive_event_type ON events_archive(event_type)",
    """
    CREATE TRIGGER events_archive_takes_truncated_events BEFORE INSERT ON events_archive
    WHEN NOT EXISTS (SELECT 1 FROM stream_truncations AS t
                     WHERE t.stream_id = NEW.stream_id AND NEW.version < t.before_version)
    BEGIN
        SELECT RAISE(ABORT, 'events_archive takes only events before their truncation point');
    END
    """,
    """
    CREATE TRIGGER events_archive_is_append_only_update BEFORE UPDATE ON events_archive
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END
    """,
    """
    CREATE TRIGGER events_archive_is_append_only_delete BEFORE DELETE ON events_archive
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END
    """,
    # A row leaves `events` only as the second half of a move: once the archive holds it
    # as it is. Every other DELETE is refused, as before.
    "DROP TRIGGER events_are_append_only_delete",
    """
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    WHEN NOT EXISTS (
        SELECT 1 FROM events_archive AS a
        WHERE a.global_position = OLD.global_position AND a.id = OLD.id
          AND a.stream_id = OLD.stream_id AND a.stream_type = OLD.stream_type
          AND a.event_type = OLD.event_type AND a.schema_version = OLD.schema_version
          AND a.event_data = OLD.event_data AND a.metadata = OLD.metadata
          AND a.version = OLD.version AND a.created_at = OLD.created_at
    )
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
    END
    """,
    # Nothing follows a tombstone, whoever inserts (one probe of the stream's last event).
    """
    CREATE TRIGGER events_end_at_their_tombstone BEFORE INSERT ON events
    WHEN (SELECT event_type FROM events WHERE stream_id = NEW.stream_id
          ORDER BY version DESC LIMIT 1) = '$StreamClosed'
    BEGIN
        SELECT RAISE(ABORT, 'stream closed: nothing can be appended after its tombstone');
    END
    """,
    # An archived event's id stays taken: a retried append must not store it again.
    """
    CREATE TRIGGER events_keep_archived_ids BEFORE INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events_archive WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: events.id (archived)'); END
    """,
    # A tombstone truncates its stream before it: the closed history reads as archived.
    """
    CREATE TRIGGER tombstones_truncate_their_stream AFTER INSERT ON events
    WHEN NEW.event_type = '$StreamClosed'
    BEGIN
        INSERT INTO stream_truncations (stream_id, before_version, truncated_at)
        VALUES (NEW.stream_id, NEW.version, NEW.created_at)
        ON CONFLICT (stream_id) DO UPDATE SET
            before_version = max(before_version, excluded.before_version),
            truncated_at = excluded.truncated_at;
    END
    """,
)

COLUMNS: Final = (
    "id, stream_id, stream_type, event_type, schema_version, event_data, metadata, version, "
    "global_position, created_at, tags"
)

# The first version a default stream read returns: the stream's truncation point, or 1.
_CUT: Final = "coalesce((SELECT before_version FROM stream_truncations WHERE stream_id = ?), 1)"


def stream_page(
    db: sqlite3.Connection,
    columns: str,
    stream_id: str,
    *,
    first: int,
    last: int,
    limit: int,
    include_archived: bool,
) -> list[Any]:
    """Read up to `limit` rows of a stream's versions `first` to `last`, in order.

    By default from the hot table, starting at the stream's truncation point; with
    `include_archived`, from both tables, ignoring it.
    """
    if not include_archived:
        return db.execute(
            f"SELECT {columns} FROM events WHERE stream_id = ? AND version >= max(?, {_CUT}) "
            "AND version <= ? ORDER BY version LIMIT ?",
            (stream_id, first, stream_id, last, limit),
        ).fetchall()
    part = f"SELECT {columns} FROM {{}} WHERE stream_id = ? AND version >= ? AND version <= ?"
    return db.execute(
        f"SELECT * FROM ({part.format('events')} UNION ALL {part.format('events_archive')}) "
        "ORDER BY version LIMIT ?",
        (stream_id, first, last, stream_id, first, last, limit),
    ).fetchall()


def global_page(db: sqlite3.Connection, where: str, params: list[Any], limit: int) -> list[Any]:
    """Read up to `limit` rows after a position in the global order, archived ones too.

    Each table gives at most one page, read along its position index, and the two merge by
    position; `where` (with ``?`` placeholders for `params`) filters both.
    """
    part = (
        f"SELECT * FROM (SELECT {COLUMNS} FROM {{}} WHERE {where} ORDER BY global_position LIMIT ?)"
    )
    return db.execute(
        f"SELECT * FROM ({part.format('events')} UNION ALL {part.format('events_archive')}) "
        "ORDER BY global_position LIMIT ?",
        [*params, limit, *params, limit, limit],
    ).fetchall()


ARCHIVABLE: Final = (
    "SELECT coalesce(sum(before_version - archived_before), 0) FROM stream_truncations "
    "WHERE archived_before < before_version"
)
"""How many events wait to be archived: versions are contiguous, so the gaps between each
stream's archived part and its truncation point count them."""

# The oldest part of the streams with work left, stream by stream, version by version.
_CANDIDATES: Final = """
    SELECT e.global_position, e.stream_id, e.version
    FROM stream_truncations AS t
    JOIN events AS e ON e.stream_id = t.stream_id
        AND e.version >= t.archived_before AND e.version < t.before_version
    WHERE t.archived_before < t.before_version
    ORDER BY t.stream_id, e.version
    LIMIT ?
"""


def archive_batch(db: sqlite3.Connection, limit: int, now: str) -> int:
    """Move up to `limit` truncated events to the archive, in the open write transaction.

    Returns how many were moved (0: nothing is left to archive).
    """
    rows = db.execute(_CANDIDATES, (limit,)).fetchall()
    if not rows:
        return 0
    positions = orjson.dumps([position for position, _, _ in rows]).decode()
    db.execute(
        f"INSERT INTO events_archive ({COLUMNS}) SELECT {COLUMNS} FROM events "
        "WHERE global_position IN (SELECT value FROM json_each(?))",
        (positions,),
    )
    db.execute(
        "DELETE FROM events WHERE global_position IN (SELECT value FROM json_each(?))",
        (positions,),
    )
    archived: dict[str, int] = {}
    for _, stream_id, version in rows:  # each stream's part moved is a prefix of its range
        archived[stream_id] = max(version, archived.get(stream_id, 0))
    db.executemany(
        "UPDATE stream_truncations SET archived_before = ?, archived_at = ? WHERE stream_id = ?",
        [(version + 1, now, stream_id) for stream_id, version in archived.items()],
    )
    return len(rows)


def stored_or_archived(
    db: sqlite3.Connection, ids: Collection[str], to_stored: Any
) -> list[StoredEvent]:
    """The events with these ids, in the hot table or the archive (for idempotent retries)."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT {COLUMNS} FROM events WHERE id IN ({marks}) UNION ALL "
        f"SELECT {COLUMNS} FROM events_archive WHERE id IN ({marks})",
        [*ids, *ids],
    )
    return list(map(to_stored, rows))


class _Store(Protocol):
    """What the methods below use of the store they are mixed into."""

    @property
    def _lock(self) -> AbstractContextManager[Any]: ...

    def _db(self) -> sqlite3.Connection: ...

    def _errors(self, action: str, what: str) -> AbstractContextManager[None]: ...

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _writing(self, action: str, what: str) -> AbstractContextManager[sqlite3.Connection]: ...


class SQLiteArchiving:
    """`truncate_before`, `archive` and `archivable` of the SQLite store (tombstones come
    with `EventStore`: they are appends, which the triggers end streams at)."""

    def truncate_before(self: _Store, stream_id: str, version: int) -> None:
        validate_stream_id(stream_id)
        with self._writing("truncate", stream_id) as db:
            row = db.execute(
                "SELECT version FROM snapshots WHERE stream_id = ?", (stream_id,)
            ).fetchone()
            check_truncation(stream_id, version, None if row is None else row[0])
            db.execute(
                "INSERT INTO stream_truncations (stream_id, before_version, truncated_at) "
                "VALUES (?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
                "before_version = excluded.before_version, truncated_at = excluded.truncated_at "
                "WHERE excluded.before_version > stream_truncations.before_version",
                (stream_id, version, datetime.now(UTC).isoformat()),
            )

    def archive(self: _Store, *, max_events: int = 5000) -> int:
        """Move up to `max_events` events of truncated or closed streams to the archive.

        One write transaction: the events leave `events` for `events_archive` with every
        column, position included, unchanged. Global reads and reads with
        `include_archived` still return them. Call it until it returns 0
        (`esframework archive` does).

        Returns:
            How many events were moved; 0 once nothing is left to archive.
        """
        if max_events < 1:
            msg = f"max_events must be 1 or more, not {max_events}"
            raise ValueError(msg)
        with self._writing("archive events of", "the store") as db:
            return archive_batch(db, max_events, datetime.now(UTC).isoformat())

    def archivable(self: _Store) -> int:
        """Return how many events of truncated or closed streams wait to be archived."""
        with self._reading() as db, self._errors("count the archivable events of", "the store"):
            (count,) = db.execute(ARCHIVABLE).fetchone()
        return int(count)
