"""The PostgreSQL store's schema, as numbered migrations.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final, LiteralString

import attrs

__all__ = ["MIGRATIONS", "Migration"]


@attrs.frozen
class Migration:
    """One numbered step of the schema: applied once per schema, in order."""

    version: int
    name: str
    statements: tuple[LiteralString, ...]  # `{schema}` stands for the quoted schema name


MIGRATIONS: Final = (
    Migration(
        1,
        "events, snapshots and checkpoints (the seed schema)",
        (
            """
            CREATE TABLE {schema}.events (
                id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
                stream_id VARCHAR(255) NOT NULL,
                stream_type VARCHAR(255) NOT NULL,
                event_type VARCHAR(255) NOT NULL,
                event_data JSONB NOT NULL,
                metadata JSONB NOT NULL DEFAULT '{{}}',
                version BIGINT NOT NULL CHECK (version >= 1),
                global_position BIGINT GENERATED ALWAYS AS IDENTITY,
                created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                schema_version INTEGER NOT NULL DEFAULT 1,
                CONSTRAINT unique_stream_version UNIQUE (stream_id, version)
            )
            """,
            # The unique constraint's index serves stream reads (the seed's
            # idx_events_stream_id would duplicate it); the global order must be unique.
            "CREATE UNIQUE INDEX idx_events_global_position ON {schema}.events (global_position)",
            "CREATE INDEX idx_events_event_type ON {schema}.events (event_type)",
            "CREATE INDEX idx_events_created_at ON {schema}.events (created_at)",
            """
            CREATE TABLE {schema}.snapshots (
                stream_id VARCHAR(255) PRIMARY KEY,
                stream_type VARCHAR(255) NOT NULL,
                snapshot_data JSONB NOT NULL,
                version BIGINT NOT NULL,
                created_at TIMESTAMPTZ DEFAULT NOW(),
                state_schema TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE {schema}.subscription_checkpoints (
                subscription_id VARCHAR(255) PRIMARY KEY,
                last_position BIGINT NOT NULL DEFAULT 0,
                updated_at TIMESTAMPTZ DEFAULT NOW()
            )
            """,
            # History is append-only, enforced by the database for every role but the owner's
            # ALTER TABLE: a bug or a stray query cannot rewrite it.
            """
            CREATE FUNCTION {schema}.esframework_reject_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'events are append-only: % on %.% is not allowed',
                    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            """
            CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON {schema}.events
            FOR EACH ROW EXECUTE FUNCTION {schema}.esframework_reject_change()
            """,
            """
            CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON {schema}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_reject_change()
            """,
        ),
    ),
    Migration(
        2,
        "subscriptions: dead letters and append notifications",
        (
            """
            CREATE TABLE {schema}.subscription_dead_letters (
                subscription_id VARCHAR(255) NOT NULL,
                global_position BIGINT NOT NULL,
                event_id UUID NOT NULL,
                stream_id VARCHAR(255) NOT NULL,
                event_type VARCHAR(255) NOT NULL,
                error TEXT NOT NULL,
                parked_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                PRIMARY KEY (subscription_id, global_position)
            )
            """,
            # One notification per appending transaction (PostgreSQL folds duplicates), sent
            # at commit: live subscriptions wake at once instead of polling.
            """
            CREATE FUNCTION {schema}.esframework_notify_append() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('esframework_events', TG_TABLE_SCHEMA);
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER events_notify_append AFTER INSERT ON {schema}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_notify_append()
            """,
        ),
    ),
)
