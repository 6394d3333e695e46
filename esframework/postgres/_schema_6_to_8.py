"""The PostgreSQL schema's migrations 6 to 8: stream closing and archiving, keys, tags.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration

__all__ = ["MIGRATIONS_6_TO_8"]

# 5 is not used; 7 is personal data; 8 tags and query reads.
MIGRATIONS_6_TO_8: Final = (
    Migration(
        6,
        "closed, truncated and archived streams",
        (
            # Per stream: reads start at `before_version` (a tombstone's version for a closed
            # stream), and the events before `archived_before` are in the archive.
            """
            CREATE TABLE {schema}.stream_truncations (
                stream_id VARCHAR(255) PRIMARY KEY,
                before_version BIGINT NOT NULL CHECK (before_version >= 1),
                archived_before BIGINT NOT NULL DEFAULT 1,
                truncated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                archived_at TIMESTAMPTZ
            )
            """,
            """
            CREATE INDEX idx_stream_truncations_to_archive ON {schema}.stream_truncations
            (stream_id) WHERE archived_before < before_version
            """,
            # The columns of `events`, in its order, so that the archiving pass copies rows
            # whole (`SELECT e.*`): a later migration adding a column to `events` must add it
            # here too. Positions stay unique across both tables: the sequencer numbers after
            # the highest position in `events`, which is never archived (see the pass).
            "CREATE TABLE {schema}.events_archive (LIKE {schema}.events INCLUDING DEFAULTS)",
            "ALTER TABLE {schema}.events_archive ALTER COLUMN global_position SET NOT NULL",
            """
            ALTER TABLE {schema}.events_archive
            ADD CONSTRAINT events_archive_pkey PRIMARY KEY (id)
            """,
            """
            ALTER TABLE {schema}.events_archive
            ADD CONSTRAINT unique_archived_stream_version UNIQUE (stream_id, version)
            """,
            """
            CREATE UNIQUE INDEX idx_events_archive_global_position
            ON {schema}.events_archive (global_position)
            """,
            "CREATE INDEX idx_events_archive_event_type ON {schema}.events_archive (event_type)",
            # The archive is append-only too, and takes rows only from the archiving pass,
            # and only rows before their stream's truncation point: checked once per
            # statement, over all the rows it inserted (a per-row probe cost a third of a
            # pass's time).
            """
            CREATE FUNCTION {schema}.esframework_check_archived() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                stray record;
            BEGIN
                SELECT i.stream_id, i.version INTO stray FROM archived AS i
                WHERE current_setting('esframework.archiving', true) IS DISTINCT FROM 'on'
                   OR NOT EXISTS (
                       SELECT FROM {schema}.stream_truncations AS t
                       WHERE t.stream_id = i.stream_id AND i.version < t.before_version
                   )
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'stream %, version %: the archive takes only events '
                        'before their stream''s truncation point, from the archiving pass',
                        stray.stream_id, stray.version
                        USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER events_archive_takes_truncated_events AFTER INSERT
            ON {schema}.events_archive REFERENCING NEW TABLE AS archived
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_check_archived()
            """,
            """
            CREATE TRIGGER events_archive_is_append_only BEFORE UPDATE OR DELETE
            ON {schema}.events_archive
            FOR EACH ROW EXECUTE FUNCTION {schema}.esframework_reject_change()
            """,
            """
            CREATE TRIGGER events_archive_is_never_truncated BEFORE TRUNCATE
            ON {schema}.events_archive
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_reject_change()
            """,
            # The changes history allows: migration 4's (a position given by the sequencing
            # pass) and the second half of a move to the archive, by the archiving pass: a
            # row leaves `events` only once the archive holds it as it is (checked once per
            # statement, below). Every other UPDATE or DELETE is refused, as before.
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
                IF TG_OP = 'DELETE' AND current_setting('esframework.archiving', true) = 'on'
                THEN
                    RETURN OLD;  -- if the archive holds it: see events_leave_for_the_archive
                END IF;
                RAISE EXCEPTION 'events are append-only: % on %.% is not allowed',
                    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            """
            CREATE FUNCTION {schema}.esframework_check_moved() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                lost record;
            BEGIN
                SELECT d.stream_id, d.version INTO lost FROM moved AS d
                WHERE NOT EXISTS (
                    SELECT FROM {schema}.events_archive AS a
                    WHERE a.id = d.id AND a.global_position = d.global_position
                      AND a.stream_id = d.stream_id AND a.version = d.version
                      AND a.stream_type = d.stream_type AND a.event_type = d.event_type
                      AND a.schema_version = d.schema_version
                      AND a.event_data = d.event_data AND a.metadata = d.metadata
                      AND a.created_at = d.created_at
                )
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'events are append-only: stream %, version % is not in '
                        'the archive, so it cannot leave %.%',
                        lost.stream_id, lost.version, TG_TABLE_SCHEMA, TG_TABLE_NAME
                        USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER events_leave_for_the_archive AFTER DELETE ON {schema}.events
            REFERENCING OLD TABLE AS moved
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.esframework_check_moved()
            """,
            # Migration 3's insert check, with three more rules, whoever inserts:
            # - nothing follows a tombstone: the probe of the previous version that keeps
            #   versions contiguous also reads its type (no extra cost);
            # - an archived event's id stays taken, so a retried append is a retry (the
            #   store reads the violation as the primary key's, and finds the event);
            # - a tombstone truncates its stream before it.
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
                IF EXISTS (SELECT FROM {schema}.events_archive WHERE id = NEW.id) THEN
                    RAISE EXCEPTION 'duplicate key value violates unique constraint "events_pkey"'
                        USING ERRCODE = 'unique_violation', CONSTRAINT = 'events_pkey',
                              DETAIL = format('Key (id)=(%s) is archived.', NEW.id);
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
            # One archiving pass: moves up to `max_rows` events before their stream's
            # truncation point from `events` to `events_archive`, rows copied whole, and
            # returns how many (-1 if another pass holds the lock).
            # - Only below a positioned event of the same stream (the one at the truncation
            #   point, which stays): so the highest position in `events` is never archived,
            #   and the sequencer, which numbers after it, never hands out an archived one.
            # - Streams in id order, each one's oldest events first: each stream's moved part
            #   is a prefix of its range, recorded in `archived_before`.
            # - SECURITY DEFINER: the application role needs no DELETE on events, nor any
            #   right on the archive but SELECT.
            # - Not the sequencer's forced custom plans: the setting holds in the triggers the
            #   pass fires too, which then planned their one-row probes anew for every row
            #   (a 10,000-event pass took 1.5 s instead of 0.5 s).
            """
            CREATE FUNCTION {schema}.esframework_archive(max_rows integer) RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            SET jit = off
            AS $$
            DECLARE
                lock_key CONSTANT bigint := hashtext('esframework archive ' || {schema_name});
                ids uuid[];
                streams text[];
                versions bigint[];
                moved integer;
            BEGIN
                IF NOT pg_try_advisory_xact_lock(lock_key) THEN
                    RETURN -1;
                END IF;
                SELECT array_agg(c.id), array_agg(c.stream_id), array_agg(c.version)
                INTO ids, streams, versions
                FROM (
                    SELECT e.id, e.stream_id, e.version
                    FROM {schema}.stream_truncations AS t
                    CROSS JOIN LATERAL (
                        SELECT id, stream_id, version FROM {schema}.events AS ev
                        WHERE ev.stream_id = t.stream_id AND ev.version >= t.archived_before
                          AND ev.version < t.before_version
                        ORDER BY ev.version LIMIT max_rows
                    ) AS e
                    WHERE t.archived_before < t.before_version
                      AND EXISTS (
                          SELECT FROM {schema}.events AS kept
                          WHERE kept.stream_id = t.stream_id
                            AND kept.version = t.before_version
                            AND kept.global_position IS NOT NULL
                      )
                    ORDER BY t.stream_id, e.version
                    LIMIT max_rows
                ) AS c;
                IF ids IS NULL THEN
                    RETURN 0;
                END IF;
                PERFORM set_config('esframework.archiving', 'on', true);
                INSERT INTO {schema}.events_archive
                SELECT e.* FROM {schema}.events AS e WHERE e.id = ANY(ids);
                DELETE FROM {schema}.events AS e WHERE e.id = ANY(ids);
                GET DIAGNOSTICS moved = ROW_COUNT;
                PERFORM set_config('esframework.archiving', 'off', true);
                UPDATE {schema}.stream_truncations AS t
                SET archived_before = m.last + 1, archived_at = now()
                FROM (
                    SELECT s, max(v) AS last FROM unnest(streams, versions) AS u(s, v)
                    GROUP BY s
                ) AS m
                WHERE t.stream_id = m.s;
                RETURN moved;
            END
            $$
            """,
            # Roles that may append read the archive (retries, global reads) and record
            # truncations (tombstones record theirs in the insert check).
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
                    EXECUTE format('GRANT SELECT ON %I.events_archive TO %I',
                                   {schema_name}, grantee);
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.stream_truncations TO %I',
                                   {schema_name}, grantee);
                END LOOP;
            END
            $$
            """,
        ),
    ),
    Migration(
        7,
        "the keys of data subjects",
        (
            # One key per data subject; a forgotten subject keeps its row with no key, so
            # nothing of theirs is sealed again.
            """
            CREATE TABLE {schema}.personal_data_keys (
                subject VARCHAR(200) PRIMARY KEY,
                key BYTEA,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                forgotten_at TIMESTAMPTZ,
                CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
            )
            """,
            # Roles that may append keep keys (saves create them, forgetting removes them).
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
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.personal_data_keys TO %I',
                                   {schema_name}, grantee);
                END LOOP;
            END
            $$
            """,
        ),
    ),
    Migration(
        8,
        "tagged events, reads by query and append conditions",
        (
            # Tags live in the event's row, sorted and unique (the store makes them so), in
            # both tables and in the same column position: the archiving pass copies rows
            # whole. A GIN index answers "events carrying all of these tags" in one scan;
            # measured against a tag table joined back by id, it read a 2-tag OR query 1.5x
            # faster and cost appends less (see "Consistency boundaries" in the concepts).
            # `fastupdate = off`: with the pending list on, every read scans it until the
            # next vacuum, which measured slower for reads and appends alike.
            "ALTER TABLE {schema}.events ADD COLUMN tags text[] NOT NULL DEFAULT '{{}}'",
            "ALTER TABLE {schema}.events_archive ADD COLUMN tags text[] NOT NULL DEFAULT '{{}}'",
            """
            CREATE INDEX idx_events_tags ON {schema}.events USING gin (tags)
            WITH (fastupdate = off)
            """,
            """
            CREATE INDEX idx_events_archive_tags ON {schema}.events_archive USING gin (tags)
            WITH (fastupdate = off)
            """,
            # Migration 6's move check, comparing the tags too: a row leaves `events` only
            # once the archive holds it with every column.
            """
            CREATE OR REPLACE FUNCTION {schema}.esframework_check_moved() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                lost record;
            BEGIN
                SELECT d.stream_id, d.version INTO lost FROM moved AS d
                WHERE NOT EXISTS (
                    SELECT FROM {schema}.events_archive AS a
                    WHERE a.id = d.id AND a.global_position = d.global_position
                      AND a.stream_id = d.stream_id AND a.version = d.version
                      AND a.stream_type = d.stream_type AND a.event_type = d.event_type
                      AND a.schema_version = d.schema_version
                      AND a.event_data = d.event_data AND a.metadata = d.metadata
                      AND a.created_at = d.created_at AND a.tags = d.tags
                )
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'events are append-only: stream %, version % is not in '
                        'the archive, so it cannot leave %.%',
                        lost.stream_id, lost.version, TG_TABLE_SCHEMA, TG_TABLE_NAME
                        USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NULL;
            END
            $$
            """,
            # The lock and check of a conditional append, called from its insert statement
            # (one round trip). Every append holds shared transaction locks on a key per tag
            # and per type of its events and on the store's key, to its commit; a
            # conditional append first takes the keys of its query exclusively (`exclusive`),
            # with those of its own events, in one sorted order (no deadlock between single
            # appends). So it waits for exactly the appends in flight that could match, and
            # appends that could match and begin later wait for it. Then, each query below
            # taking a fresh snapshot (READ COMMITTED), it looks for a matching event after
            # `after` or not yet positioned, in both tables, and raises with the first
            # conflicting position (0: not positioned yet) if it finds one.
            # `items` is the query: [{"tags": [...], "types": [...]}, ...] (both may be
            # empty); `after` is -1 for "any matching event at all".
            """
            CREATE FUNCTION {schema}.esframework_condition(
                keys bigint[], exclusive boolean[], items jsonb, after bigint
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
                          AND (e.global_position > after) IS NOT FALSE;
                        IF found_at IS NULL THEN
                            SELECT min(a.global_position) INTO found_at
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
                        WHERE e.global_position IS NULL
                          AND (cardinality(item.types) = 0 OR e.event_type = ANY(item.types))
                        LIMIT 1;
                        IF found_at IS NULL THEN
                            SELECT min(e.global_position) INTO found_at
                            FROM {schema}.events AS e
                            WHERE e.global_position > after
                              AND (cardinality(item.types) = 0
                                   OR e.event_type = ANY(item.types));
                        END IF;
                        IF found_at IS NULL THEN
                            SELECT min(a.global_position) INTO found_at
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
        ),
    ),
)
