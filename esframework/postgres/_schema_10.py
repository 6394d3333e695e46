"""The PostgreSQL store's migration 10: positions a server crash took back are never reused.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_10"]

MIGRATIONS_10: Final = (
    Migration(
        10,
        "positions lost in a server crash are not given again",
        (
            # A pass commits without waiting for its WAL flush (see `_sequencer.py`), so a
            # crash can take back the positions of the last passes after readers saw them.
            # Renumbered in insert order, an event committed late could then take a
            # position at or below a reader's checkpoint, and be skipped by a reader that
            # keeps that checkpoint outside the database. An unlogged table is emptied by
            # crash recovery (and is empty on a promoted standby or a restored base backup),
            # never by a clean shutdown: the first pass that finds it empty starts numbering
            # past every position that can have been lost. Each lost position belonged to
            # an event that is unpositioned again (its own commit waited for its flush), so
            # skipping as many positions as there are unpositioned events is enough. Readers
            # then see those events again (once more, at later positions), never a hole.
            """
            CREATE UNLOGGED TABLE {schema}.esframework_sequencer_run (
                running boolean PRIMARY KEY DEFAULT true CHECK (running)
            )
            """,
            # Migration 4's pass, with the step above.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_sequence(
                max_rows integer, wait boolean DEFAULT false
            ) RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            SET plan_cache_mode = force_custom_plan
            SET jit = off
            SET enable_bitmapscan = off
            AS $$
            DECLARE
                lock_key CONSTANT bigint := hashtext('esframework sequence ' || {schema_name});
                asked_at bigint;
                last_position bigint;
                positioned integer;
            BEGIN
                IF wait THEN
                    SELECT passes INTO asked_at FROM {schema}.esframework_sequencer;
                    PERFORM pg_advisory_xact_lock(lock_key);
                    IF (SELECT passes FROM {schema}.esframework_sequencer) >= asked_at + 2 THEN
                        RETURN -2;
                    END IF;
                ELSIF NOT pg_try_advisory_xact_lock(lock_key) THEN
                    RETURN -1;
                END IF;
                SELECT coalesce(max(global_position), 0) INTO last_position
                FROM {schema}.events;
                IF NOT EXISTS (SELECT FROM {schema}.esframework_sequencer_run) THEN
                    last_position := last_position + (
                        SELECT count(*) FROM {schema}.events WHERE global_position IS NULL);
                    INSERT INTO {schema}.esframework_sequencer_run DEFAULT VALUES;
                END IF;
                PERFORM set_config('esframework.sequencing', 'on', true);
                WITH pending AS MATERIALIZED (
                    SELECT id, row_number() OVER (ORDER BY insert_order) AS n
                    FROM (
                        SELECT id, insert_order FROM {schema}.events
                        WHERE global_position IS NULL
                        ORDER BY insert_order LIMIT max_rows
                    ) AS oldest
                )
                UPDATE {schema}.events AS e SET global_position = last_position + pending.n
                FROM pending
                WHERE e.id = pending.id AND e.global_position IS NULL;
                GET DIAGNOSTICS positioned = ROW_COUNT;
                PERFORM set_config('esframework.sequencing', 'off', true);
                IF positioned > 0 THEN
                    IF positioned < max_rows THEN  -- it positioned all it could see
                        UPDATE {schema}.esframework_sequencer SET passes = passes + 1;
                    END IF;
                    PERFORM pg_notify('esframework_events', {schema_name});
                END IF;
                RETURN positioned;
            END
            $$
            """,
            # Before the first pass of a new schema nothing was lost: no gap.
            "INSERT INTO {schema}.esframework_sequencer_run DEFAULT VALUES",
        ),
    ),
)
