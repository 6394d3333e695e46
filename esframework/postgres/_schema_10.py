"""The PostgreSQL store's migration 10: sequencing passes that plan once, and never give again
the positions a server crash took back.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_10"]

MIGRATIONS_10: Final = (
    Migration(
        10,
        "sequencing passes: plans made once, positions lost in a crash not given again",
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
            # Migration 4's pass, with the step above and three more changes:
            # - Plans made once per session (`force_generic_plan`): planning every statement
            #   on every pass was most of a small pass's cost (an empty pass 213 us instead
            #   of 60 us). A cached plan must stay right as the table grows from nothing,
            #   whatever its statistics say, so each statement has one sound plan only and
            #   the others are switched off: the pending events come from the pending
            #   index in insert order, and each is then positioned through its row's
            #   address (a TID scan), its id and "still unpositioned" re-checked there.
            #   The set-based update of migration 4 joined the pending events to the
            #   table, and with the statistics of a young table (an ANALYZE at two events)
            #   every plan of that join, custom or generic, walked the pending index or
            #   the table once per positioned event: a pass over a 12,000-event backlog
            #   ran past 5 s (the test's statement timeout) instead of 0.15 s a pass.
            # - The positions are the events' places in insert order, numbered as they are
            #   written, so a row that is no longer pending (none can be, under the lock)
            #   would leave no gap.
            # - A pass that finds nothing pending stops there.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_sequence(
                max_rows integer, wait boolean DEFAULT false
            ) RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            SET plan_cache_mode = force_generic_plan
            SET jit = off
            SET enable_bitmapscan = off
            SET enable_seqscan = off
            AS $$
            DECLARE
                lock_key CONSTANT bigint := hashtext('esframework sequence ' || {schema_name});
                asked_at bigint;
                pending tid[];
                pending_ids uuid[];
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
                SELECT array_agg(oldest.ctid ORDER BY oldest.insert_order),
                       array_agg(oldest.id ORDER BY oldest.insert_order)
                INTO pending, pending_ids
                FROM (
                    SELECT ctid, id, insert_order FROM {schema}.events
                    WHERE global_position IS NULL
                    ORDER BY insert_order LIMIT max_rows
                ) AS oldest;
                IF pending IS NULL THEN
                    RETURN 0;
                END IF;
                SELECT coalesce(max(global_position), 0) INTO last_position
                FROM {schema}.events;
                IF NOT EXISTS (SELECT FROM {schema}.esframework_sequencer_run) THEN
                    last_position := last_position + (
                        SELECT count(*) FROM {schema}.events WHERE global_position IS NULL);
                    INSERT INTO {schema}.esframework_sequencer_run DEFAULT VALUES;
                END IF;
                PERFORM set_config('esframework.sequencing', 'on', true);
                positioned := 0;
                FOR i IN 1 .. cardinality(pending) LOOP
                    UPDATE {schema}.events SET global_position = last_position + positioned + 1
                    WHERE ctid = pending[i] AND id = pending_ids[i]
                      AND coalesce(global_position, 0) = 0;
                    IF FOUND THEN
                        positioned := positioned + 1;
                    END IF;
                END LOOP;
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
