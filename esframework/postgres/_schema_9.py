"""The PostgreSQL store's migration 9: append conditions and units of work.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_9"]

MIGRATIONS_9: Final = (
    Migration(
        9,
        "append conditions: a unit of work's own events, the first conflict archived or not",
        (
            # Migration 8's check, with two changes:
            # - `own`: the events a unit of work appended before the read its decision made,
            #   which that read returned (they have no position until the unit commits, and
            #   would otherwise conflict at 0 with the unit's next decision, on every try);
            # - it looked in the archive only when the live table held no match, so with
            #   older matches archived it named a later one; both tables are searched now
            #   (unless an unpositioned match, position 0, came first).
            """
            CREATE FUNCTION {schema}.esframework_condition(
                keys bigint[], exclusive boolean[], items jsonb, after bigint, own uuid[]
            ) RETURNS integer
            LANGUAGE plpgsql
            SET jit = off
            AS $$
            DECLARE
                item record;
                found_at bigint;
                conflict bigint;
            BEGIN
                IF current_setting('transaction_isolation') <> 'read committed' THEN
                    RAISE EXCEPTION 'a conditional append needs READ COMMITTED isolation (its '
                        'check must see what committed while it waited), not %',
                        current_setting('transaction_isolation')
                        USING ERRCODE = 'feature_not_supported';
                END IF;
                FOR i IN 1 .. coalesce(cardinality(keys), 0) LOOP
                    IF exclusive[i] THEN
                        PERFORM pg_advisory_xact_lock(keys[i]);
                    ELSE
                        PERFORM pg_advisory_xact_lock_shared(keys[i]);
                    END IF;
                END LOOP;
                FOR item IN
                    SELECT coalesce(t.tags, '{{}}') AS tags, coalesce(t.types, '{{}}') AS types
                    FROM jsonb_to_recordset(items) AS t(tags text[], types text[])
                LOOP
                    found_at := NULL;
                    IF cardinality(item.tags) > 0 THEN
                        -- Through the tags' GIN index alone: tests written as IS TRUE or
                        -- IS NOT FALSE are no index conditions, so no plan ANDs in the
                        -- position index (every position after `after`, which grew with
                        -- each append) or the type index (every event of a common type):
                        -- both were measured to make a check 5 to 10 times slower.
                        SELECT min(coalesce(e.global_position, 0)) INTO found_at
                        FROM {schema}.events AS e
                        WHERE e.tags @> item.tags
                          AND (cardinality(item.types) = 0
                               OR (e.event_type = ANY(item.types)) IS TRUE)
                          AND (e.global_position > after) IS NOT FALSE
                          AND NOT (e.global_position IS NULL AND e.id = ANY(own));
                        IF found_at IS DISTINCT FROM 0 THEN
                            SELECT least(found_at, min(a.global_position)) INTO found_at
                            FROM {schema}.events_archive AS a
                            WHERE a.tags @> item.tags
                              AND (cardinality(item.types) = 0
                                   OR (a.event_type = ANY(item.types)) IS TRUE)
                              AND (a.global_position > after) IS TRUE;
                        END IF;
                    ELSE
                        -- Untagged items: the unpositioned events (a small partial index),
                        -- then the positions after `after`, in both tables.
                        SELECT 0 INTO found_at FROM {schema}.events AS e
                        WHERE e.global_position IS NULL AND e.id <> ALL(own)
                          AND (cardinality(item.types) = 0 OR e.event_type = ANY(item.types))
                        LIMIT 1;
                        IF found_at IS NULL THEN
                            SELECT min(e.global_position) INTO found_at
                            FROM {schema}.events AS e
                            WHERE e.global_position > after
                              AND (cardinality(item.types) = 0
                                   OR e.event_type = ANY(item.types));
                        END IF;
                        IF found_at IS DISTINCT FROM 0 THEN
                            SELECT least(found_at, min(a.global_position)) INTO found_at
                            FROM {schema}.events_archive AS a
                            WHERE a.global_position > after
                              AND (cardinality(item.types) = 0
                                   OR a.event_type = ANY(item.types));
                        END IF;
                    END IF;
                    IF found_at IS NOT NULL AND (conflict IS NULL OR found_at < conflict) THEN
                        conflict := found_at;
                    END IF;
                END LOOP;
                IF conflict IS NOT NULL THEN
                    RAISE EXCEPTION 'append condition failed: a matching event is stored '
                        'after position %', after
                        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'append_condition',
                              DETAIL = conflict::text;
                END IF;
                RETURN 0;
            END
            $$
            """,
            # The old signature, for clients of the release before: no events of their own.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_condition(
                keys bigint[], exclusive boolean[], items jsonb, after bigint
            ) RETURNS integer
            LANGUAGE sql
            AS $$
                SELECT {schema}.esframework_condition(keys, exclusive, items, after, '{{}}'::uuid[])
            $$
            """,
        ),
    ),
)
