"""The SQLite store's tables, as the statements a new file runs, in order."""

from __future__ import annotations

from typing import Final

from esframework._sqlite_keys import KEYS_SCHEMA
from esframework._sqlite_queries import TAGS_SCHEMA
from esframework._sqlite_retention import RETENTION_SCHEMA

__all__ = ["SCHEMA"]

# The tables and columns of the PostgreSQL schema, in SQLite's types. `user_version`
# records which of these statements a file has, so later releases can add to the list.
SCHEMA: Final = (
    """
    CREATE TABLE events (
        global_position INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        stream_id TEXT NOT NULL CHECK (length(stream_id) BETWEEN 1 AND 255),
        stream_type TEXT NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL DEFAULT 1,
        event_data TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        version INTEGER NOT NULL CHECK (version >= 1),
        created_at TEXT NOT NULL,
        CONSTRAINT unique_stream_version UNIQUE (stream_id, version)
    )
    """,
    "CREATE INDEX idx_events_event_type ON events(event_type)",
    "CREATE INDEX idx_events_created_at ON events(created_at)",
    """
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END
    """,
    """
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END
    """,
    """
    CREATE TABLE snapshots (
        stream_id TEXT PRIMARY KEY,
        stream_type TEXT NOT NULL,
        snapshot_data TEXT NOT NULL,
        version INTEGER NOT NULL,
        state_schema TEXT NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE subscription_checkpoints (
        subscription_id TEXT PRIMARY KEY,
        last_position INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE subscription_dead_letters (
        subscription_id TEXT NOT NULL,
        global_position INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        error TEXT NOT NULL,
        parked_at TEXT NOT NULL,
        PRIMARY KEY (subscription_id, global_position)
    )
    """,
    """
    CREATE TABLE subscription_leases (
        subscription_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL
    )
    """,
    # Closed, truncated and archived streams: see `_sqlite_retention`.
    *RETENTION_SCHEMA,
    # The keys of data subjects: see `_sqlite_keys`.
    *KEYS_SCHEMA,
    # Tagged events, for reads by query and conditional appends: see `_sqlite_queries`.
    *TAGS_SCHEMA,
)
