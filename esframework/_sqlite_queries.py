"""The SQLite store's statements for tagged events: the tag index, reads by query, conditions.

Each event keeps its tags twice: as a JSON array in its own row (`events.tags`, and
`events_archive.tags` once archived), which reads return, and one row per tag in
`event_tags`, a B-tree on (tag, position) that a query's tagged items walk. `event_tags`
also holds each event's type, so a typed and tagged item needs no second lookup, and it
covers archived events too: archiving moves rows between the event tables, never these.

SQLite has one writer at a time (`BEGIN IMMEDIATE`), so a condition checked in the append's
own write transaction sees every event that committed before it, and none can commit
between the check and the insert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from esframework._queries import Query, QueryItem, QueryResult
from esframework._records import StoredEvent
from esframework._sqlite_retention import COLUMNS

__all__ = [
    "TAGS_SCHEMA",
    "first_conflict",
    "insert_tags",
    "query_page",
    "tags_column",
    "tags_of",
]

# Appended to `_sqlite_schema.SCHEMA` (applied once per file, in order: never edit these).
TAGS_SCHEMA: Final = (
    "ALTER TABLE events ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE events_archive ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",
    """
    CREATE TABLE event_tags (
        tag TEXT NOT NULL,
        global_position INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        PRIMARY KEY (tag, global_position)
    ) WITHOUT ROWID
    """,
    """
    CREATE TRIGGER event_tags_are_append_only_update BEFORE UPDATE ON event_tags
    BEGIN SELECT RAISE(ABORT, 'event tags are append-only: UPDATE is not allowed'); END
    """,
    """
    CREATE TRIGGER event_tags_are_append_only_delete BEFORE DELETE ON event_tags
    BEGIN SELECT RAISE(ABORT, 'event tags are append-only: DELETE is not allowed'); END
    """,
    # The move to the archive must keep the tags too: a row leaves `events` only once the
    # archive holds it with every column, tags included.
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
          AND a.tags = OLD.tags
    )
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
    END
    """,
)


def tags_column(tags: Sequence[str]) -> str:
    """The `tags` column's text for these (sorted, unique) tags."""
    return orjson.dumps(list(tags)).decode() if tags else "[]"


def tags_of(column: str) -> tuple[str, ...]:
    """The tags a `tags` column holds."""
    return () if column == "[]" else tuple(orjson.loads(column))


def insert_tags(db: sqlite3.Connection, rows: Sequence[tuple[int, str, Sequence[str]]]) -> None:
    """Index the tags of new events, given as (position, event type, tags)."""
    db.executemany(
        "INSERT INTO event_tags (tag, global_position, event_type) VALUES (?, ?, ?)",
        [(tag, position, kind) for position, kind, tags in rows for tag in tags],
    )


def _item(item: QueryItem, bounds: str, bound: list[Any]) -> tuple[str, list[Any]]:
    # The positions of the events one item matches, within `bounds` (on global_position).
    types = sorted(item.types)
    marks = ",".join("?" * len(types))
    if item.tags:
        first, *others = sorted(item.tags)
        sql = "SELECT t0.global_position AS p FROM event_tags AS t0"
        params: list[Any] = []
        for i, tag in enumerate(others, start=1):
            sql += (
                f" JOIN event_tags AS t{i} ON t{i}.tag = ? "
                f"AND t{i}.global_position = t0.global_position"
            )
            params.append(tag)
        sql += f" WHERE t0.tag = ? AND {bounds.format(c='t0.global_position')}"
        params += [first, *bound]
        if types:
            sql += f" AND t0.event_type IN ({marks})"
            params += types
        return sql, params
    # Typed but untagged: the event-type index of each table.
    part = f"SELECT global_position AS p FROM {{}} WHERE event_type IN ({marks}) AND {bounds}"
    sql = (
        f"{part.format('events', c='global_position')} UNION ALL "
        f"{part.format('events_archive', c='global_position')}"
    )
    return sql, [*types, *bound, *types, *bound]


def _matching(query: Query, bounds: str, bound: list[Any]) -> tuple[str, list[Any]]:
    # A `WITH m(p)` of the positions `query` matches (within `bounds`); not for `is_all`.
    parts = [_item(item, bounds, bound) for item in query.items]
    sql = " UNION ".join(part for part, _ in parts)
    return f"WITH m(p) AS ({sql})", [param for _, params in parts for param in params]


def query_page(
    db: sqlite3.Connection,
    query: Query,
    after: int,
    limit: int | None,
    to_stored: Callable[[Any], StoredEvent],
) -> QueryResult:
    """Read the events `query` matches after `after`, and the head the read saw.

    The head is read first: with one writer at a time, every position up to it has
    committed, so the events read up to it are all there are (later commits are cut off).
    """
    (head,) = db.execute(
        "SELECT max(coalesce((SELECT max(global_position) FROM events), 0), "
        "coalesce((SELECT max(global_position) FROM events_archive), 0))"
    ).fetchone()
    page = -1 if limit is None else limit
    bounds = "{c} > ? AND {c} <= ?"
    if query.is_all:
        part = f"SELECT {COLUMNS} FROM {{}} WHERE global_position > ? AND global_position <= ?"
        rows = db.execute(
            f"{part.format('events')} UNION ALL {part.format('events_archive')} "
            "ORDER BY global_position LIMIT ?",
            (after, head, after, head, page),
        ).fetchall()
    else:
        with_m, params = _matching(query, bounds, [after, head])
        part = f"SELECT {COLUMNS} FROM {{}} WHERE global_position IN (SELECT p FROM m)"
        rows = db.execute(
            f"{with_m} {part.format('events')} UNION ALL {part.format('events_archive')} "
            "ORDER BY global_position LIMIT ?",
            [*params, page],
        ).fetchall()
    events = list(map(to_stored, rows))
    if limit is not None and len(events) == limit:
        # Cut short: seen up to the last event read (with a limit of 0, up to `after`).
        head = events[-1].position if events else after
    return QueryResult(events, max(head, after))


def first_conflict(db: sqlite3.Connection, query: Query, after: int | None) -> int | None:
    """The position of the first event `query` matches after `after`, or None.

    Run in the append's write transaction: nothing else commits until it ends.
    """
    start = -1 if after is None else after
    if query.is_all:
        (found,) = db.execute(
            "SELECT min(p) FROM (SELECT min(global_position) AS p FROM events "
            "WHERE global_position > ? UNION ALL SELECT min(global_position) FROM events_archive "
            "WHERE global_position > ?)",
            (start, start),
        ).fetchone()
    else:
        with_m, params = _matching(query, "{c} > ?", [start])
        (found,) = db.execute(f"{with_m} SELECT min(p) FROM m", params).fetchone()
    return None if found is None else int(found)
