"""The PostgreSQL schema's migrations 1 to 4: events, subscriptions, and the sequencer.

Never edit a released migration: append a new one after the last (in `_schema_6_to_8.py`).
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_1_TO_4"]

MIGRATIONS_1_TO_4: Final = (
    Migration(
        1,
        "events, snapshots and checkpoints",
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
    Migration(
        3,
        "global positions assigned after commit, by a sequencer",
        (
            # Appends no longer draw positions: they insert with none, and a sequencing pass
            # (the function below) numbers committed events in the order they were inserted.
            # Existing events keep their positions; no row is rewritten.
            "ALTER TABLE {schema}.events ALTER COLUMN global_position DROP IDENTITY IF EXISTS",
            "ALTER TABLE {schema}.events ALTER COLUMN global_position DROP NOT NULL",
            "ALTER TABLE {schema}.events ADD COLUMN insert_order BIGINT",
            "CREATE SEQUENCE {schema}.events_insert_order OWNED BY {schema}.events.insert_order",
            # Positions restored from a dump continue from the restored ones: the sequencer
            # numbers from the highest stored position, so nothing depends on server state.
            """
            CREATE INDEX idx_events_unpositioned ON {schema}.events (insert_order)
            WHERE global_position IS NULL
            """,
            # Notifications now come once per sequencing pass, not from every append's
            # commit: NOTIFY takes a cluster-wide lock held through the commit's flush.
            "DROP TRIGGER events_notify_append ON {schema}.events",
            "DROP FUNCTION {schema}.esframework_notify_append()",
            # Every insert comes through the append path's rules, whoever sends it: no
            # position of its own, no version that skips ahead, its order drawn here.
            """
            CREATE FUNCTION {schema}.esframework_check_insert() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.global_position IS NOT NULL THEN
                    RAISE EXCEPTION 'stream %, version %: events get their global position '
                        'from the store, not from the insert (position % given)',
                        NEW.stream_id, NEW.version, NEW.global_position
                        USING ERRCODE = 'restrict_violation';
                END IF;
                IF NEW.version > 1 AND NOT EXISTS (
                    SELECT FROM {schema}.events
                    WHERE stream_id = NEW.stream_id AND version = NEW.version - 1
                ) THEN
                    RAISE EXCEPTION 'stream %, version %: the stream has no version % to '
                        'follow (versions are contiguous)',
                        NEW.stream_id, NEW.version, NEW.version - 1
                        USING ERRCODE = 'restrict_violation';
                END IF;
                NEW.insert_order := nextval(
                    quote_ident(TG_TABLE_SCHEMA) || '.events_insert_order');
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE TRIGGER events_follow_the_append_path BEFORE INSERT ON {schema}.events
            FOR EACH ROW EXECUTE FUNCTION {schema}.esframework_check_insert()
            """,
            # The one change history allows: an unpositioned event receives its position,
            # from the sequencing function (which marks its transaction while it runs).
            """
            CREATE FUNCTION {schema}.esframework_guard_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.global_position IS NULL
                   AND NEW.global_position IS NOT NULL
                   AND current_setting('esframework.sequencing', true) = 'on'
                   AND to_jsonb(NEW) - 'global_position' = to_jsonb(OLD) - 'global_position'
                THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'events are append-only: % on %.% is not allowed',
                    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            "DROP TRIGGER events_are_append_only ON {schema}.events",
            """
            CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON {schema}.events
            FOR EACH ROW EXECUTE FUNCTION {schema}.esframework_guard_change()
            """,
            # One sequencing pass: numbers up to `max_rows` committed, unpositioned events
            # in insert order, after the highest position stored, and wakes listeners.
            # - Passes run one at a time (the advisory lock, held to commit), and each
            #   statement below takes a fresh snapshot after the lock: a pass always sees
            #   what the previous one committed, so positions never collide.
            # - Only committed rows are visible, and a stream's next version can only be
            #   inserted once the previous one committed: insert order keeps every stream in
            #   version order, and a late commit simply gets a later position.
            # - The numbers are computed in a materialized step (row_number over the insert
            #   order); drawing them with nextval in the UPDATE would follow the join order.
            # - SECURITY DEFINER: the application role needs no UPDATE right on events.
            # - Custom plans and no JIT: a cached generic plan of this statement was
            #   measured to probe the whole pending index per row.
            """
            CREATE FUNCTION {schema}.esframework_sequence(
                max_rows integer, wait boolean DEFAULT false
            ) RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            SET plan_cache_mode = force_custom_plan
            SET jit = off
            AS $$
            DECLARE
                lock_key CONSTANT bigint := hashtext('esframework sequence ' || {schema_name});
                last_position bigint;
                positioned integer;
            BEGIN
                IF wait THEN
                    PERFORM pg_advisory_xact_lock(lock_key);
                ELSIF NOT pg_try_advisory_xact_lock(lock_key) THEN
                    RETURN -1;
                END IF;
                SELECT coalesce(max(global_position), 0) INTO last_position
                FROM {schema}.events;
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
                    PERFORM pg_notify('esframework_events', {schema_name});
                END IF;
                RETURN positioned;
            END
            $$
            """,
            # Roles that could append before could draw positions from the identity; they
            # need the new sequence for the same inserts.
            """
            DO $$
            DECLARE
                grantee text;
            BEGIN
                FOR grantee IN
                    SELECT DISTINCT g.grantee FROM information_schema.role_table_grants AS g
                    WHERE g.table_schema = {schema_name} AND g.table_name = 'events'
                      AND g.privilege_type = 'INSERT' AND g.grantee <> current_user
                      AND g.grantee <> 'PUBLIC'
                LOOP
                    EXECUTE format('GRANT USAGE ON SEQUENCE %I.events_insert_order TO %I',
                                   {schema_name}, grantee);
                END LOOP;
            END
            $$
            """,
        ),
    ),
    Migration(
        4,
        "cheaper sequencing passes",
        (
            # The guard compared every positioned row as a whole jsonb document, twice; a
            # record comparison checks the same (nothing but the position changes) at a
            # third of the cost per row.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_guard_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                unchanged record;
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.global_position IS NULL
                   AND NEW.global_position IS NOT NULL
                   AND current_setting('esframework.sequencing', true) = 'on'
                THEN
                    unchanged := NEW;
                    unchanged.global_position := NULL;
                    IF unchanged IS NOT DISTINCT FROM OLD THEN
                        RETURN NEW;
                    END IF;
                END IF;
                RAISE EXCEPTION 'events are append-only: % on %.% is not allowed',
                    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            # How many passes committed, having positioned every event they could see: a
            # store whose commit needs positioning waits for the pass lock, then skips its
            # own pass if another began after it asked (that one saw its commit).
            """
            CREATE TABLE {schema}.esframework_sequencer (
                passes bigint NOT NULL
            )
            """,
            "INSERT INTO {schema}.esframework_sequencer (passes) VALUES (0)",
            # The pass of migration 3, with two changes:
            # - Waiting for the lock (`wait`), it returns -2 without doing anything if a pass
            #   that began after the call committed meanwhile: the first pass covers every
            #   waiter that asked before it began, so the queue of processes behind the lock
            #   drains at once instead of each running a pass of its own. Counting
            #   committed passes, "two more than when I asked" means one of them began
            #   after the ask (the other may have been running already).
            # - An index scan, not a bitmap scan: each positioned row leaves a dead entry in
            #   the pending index until VACUUM. The bitmap scan the planner chose for the few
            #   rows it expects visits every one of them on every pass (11 ms per pass after
            #   57,000 appends); an index scan marks them dead as it passes, so later scans
            #   skip them and full pages drop them instead of splitting (0.3 ms).
            # - Still custom plans: a cached generic plan is faster for small passes (an empty
            #   pass 186 us instead of 281 us) but, with a backlog larger than `max_rows`,
            #   a pass over 100,000 pending events ran for over 12 s instead of ~150 ms.
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
            # The documented application role lacked the rights its subscriptions need to
            # park events and take them off again: roles that may keep checkpoints get them.
            """
            DO $$
            DECLARE
                grantee text;
            BEGIN
                FOR grantee IN
                    SELECT DISTINCT g.grantee FROM information_schema.role_table_grants AS g
                    WHERE g.table_schema = {schema_name}
                      AND g.table_name = 'subscription_checkpoints'
                      AND g.privilege_type = 'UPDATE' AND g.grantee <> current_user
                      AND g.grantee <> 'PUBLIC'
                LOOP
                    EXECUTE format(
                        'GRANT SELECT, INSERT, UPDATE, DELETE ON %I.subscription_dead_letters '
                        'TO %I', {schema_name}, grantee);
                END LOOP;
            END
            $$
            """,
        ),
    ),
)
