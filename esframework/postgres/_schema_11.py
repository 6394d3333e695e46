"""The PostgreSQL store's migration 11: an archived event's id stays taken, also while the
archiving pass moves it.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_11"]

MIGRATIONS_11: Final = (
    Migration(
        11,
        "an event's id stays taken while the archiving pass moves it",
        (
            # Migration 6's insert check looked in the archive for the new event's id before
            # the insert, so before the primary key's check. While an archiving pass had
            # copied the event to the archive and deleted it from `events`, not committed
            # yet, that look found nothing; the primary key then waited for the pass, whose
            # commit removed the live row, and let the insert through: an append expecting
            # any version, retried after its answer was lost, stored its event a second
            # time, as the stream's next version. Checked after the insert (once per
            # statement, over all its rows), the archive is seen as the pass committed it:
            # the primary key waited for the pass if it had moved the event. The pass copies
            # before it deletes, in one transaction, so no moment shows neither row.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_check_insert() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                previous_type text;
            BEGIN
                IF NEW.global_position IS NOT NULL THEN
                    RAISE EXCEPTION 'stream %, version %: events get their global position '
                        'from the store, not from the insert (position % given)',
                        NEW.stream_id, NEW.version, NEW.global_position
                        USING ERRCODE = 'restrict_violation';
                END IF;
                IF NEW.version > 1 THEN
                    SELECT event_type INTO previous_type FROM {schema}.events
                    WHERE stream_id = NEW.stream_id AND version = NEW.version - 1;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'stream %, version %: the stream has no version % to '
                            'follow (versions are contiguous)',
                            NEW.stream_id, NEW.version, NEW.version - 1
                            USING ERRCODE = 'restrict_violation';
                    END IF;
                    IF previous_type = '$StreamClosed' THEN
                        RAISE EXCEPTION 'stream %, version %: the stream is closed by its '
                            'tombstone at version %; nothing can follow it',
                            NEW.stream_id, NEW.version, NEW.version - 1
                            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'stream_closed';
                    END IF;
                END IF;
                IF NEW.event_type = '$StreamClosed' THEN
                    INSERT INTO {schema}.stream_truncations AS t (stream_id, before_version)
                    VALUES (NEW.stream_id, NEW.version)
                    ON CONFLICT (stream_id) DO UPDATE
                    SET before_version = greatest(t.before_version, excluded.before_version),
                        truncated_at = now();
                END IF;
                NEW.insert_order := nextval(
                    quote_ident(TG_TABLE_SCHEMA) || '.events_insert_order');
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE FUNCTION {schema}.esframework_check_archived_ids() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                taken uuid;
            BEGIN
                SELECT a.id INTO taken FROM inserted AS i
                JOIN {schema}.events_archive AS a ON a.id = i.id
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'duplicate key value violates unique constraint "events_pkey"'
                        USING ERRCODE = 'unique_violation', CONSTRAINT = 'events_pkey',
                              DETAIL = format('Key (id)=(%s) is archived.', taken);
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER events_keep_archived_ids_taken AFTER INSERT ON {schema}.events
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_check_archived_ids()
            """,
        ),
    ),
)
