"""What an event's positioning costs the server: the store's pass against two alternatives.

`pgbench` (no Python in the timed loop), one client, `synchronous_commit = off` so that the
CPU and not the flush is measured. Each script appends three events to new streams, one
autocommit statement each, then runs one sequencing pass; the variants, each in a schema of
its own, alternate over the rounds:

- `store`: the store's schema and its append statement (migrations 1 to 11), its pass;
- `store_tagged_gin`: the same, with the tags index over tagged events only;
- `plain_update`: the events table with its indexes but no insert triggers and no shared
  locks, and a pass of the same design (pending rows' addresses in insert order, each row's
  position set through its address): what the update of an event row costs;
- `positions_table`: the same table without the position indexes; each append also queues
  its event's id, and the pass moves the queued ids, in insert order, to a positions table:
  no event row is updated.

Prints the median time per script run (three appends and a pass) of each variant.

    python benchmarks/pass_variants.py [--dsn DSN] [--rounds 7] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from esframework.postgres import PostgresEventStore
from esframework.postgres._sql import Statements, dcb_key

PAYLOAD = """'{"amount": "12.50", "note": "deposit number 12345"}'"""

PLAIN_TABLE = """
    CREATE SEQUENCE {s}.events_insert_order;
    CREATE TABLE {s}.events (
        id uuid PRIMARY KEY,
        stream_id varchar(255) NOT NULL,
        stream_type varchar(255) NOT NULL,
        event_type varchar(255) NOT NULL,
        event_data jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        version bigint NOT NULL CHECK (version >= 1),
        global_position bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        schema_version integer NOT NULL DEFAULT 1,
        insert_order bigint NOT NULL DEFAULT nextval('{s}.events_insert_order'),
        tags text[] NOT NULL DEFAULT '{{}}',
        UNIQUE (stream_id, version)
    );
    CREATE INDEX ON {s}.events (event_type);
    CREATE INDEX ON {s}.events (created_at);
    CREATE INDEX ON {s}.events USING gin (tags) WITH (fastupdate = off);
"""

PLAIN_UPDATE = """
    CREATE UNIQUE INDEX ON {s}.events (global_position);
    CREATE INDEX ON {s}.events (insert_order) WHERE global_position IS NULL;
    CREATE FUNCTION {s}.sequence() RETURNS int LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan SET enable_bitmapscan = off
    SET enable_seqscan = off AS $$
    DECLARE
        pending tid[]; pending_ids uuid[]; last_position bigint; positioned int := 0;
    BEGIN
        IF NOT pg_try_advisory_xact_lock(hashtext('{s}')) THEN RETURN -1; END IF;
        SELECT array_agg(o.ctid ORDER BY o.insert_order), array_agg(o.id ORDER BY o.insert_order)
        INTO pending, pending_ids
        FROM (SELECT ctid, id, insert_order FROM {s}.events WHERE global_position IS NULL
              ORDER BY insert_order LIMIT 1000) AS o;
        IF pending IS NULL THEN RETURN 0; END IF;
        SELECT coalesce(max(global_position), 0) INTO last_position FROM {s}.events;
        FOR i IN 1 .. cardinality(pending) LOOP
            UPDATE {s}.events SET global_position = last_position + positioned + 1
            WHERE ctid = pending[i] AND id = pending_ids[i] AND global_position IS NULL;
            IF FOUND THEN positioned := positioned + 1; END IF;
        END LOOP;
        RETURN positioned;
    END $$;
"""

POSITIONS_TABLE = """
    CREATE TABLE {s}.pending (insert_order bigint PRIMARY KEY, event_id uuid NOT NULL);
    CREATE TABLE {s}.positions (global_position bigint PRIMARY KEY, event_id uuid NOT NULL);
    CREATE FUNCTION {s}.sequence() RETURNS int LANGUAGE plpgsql AS $$
    DECLARE moved int;
    BEGIN
        IF NOT pg_try_advisory_xact_lock(hashtext('{s}')) THEN RETURN -1; END IF;
        WITH taken AS (
            DELETE FROM {s}.pending WHERE insert_order IN (
                SELECT insert_order FROM {s}.pending ORDER BY insert_order LIMIT 1000)
            RETURNING event_id, insert_order
        ), ordered AS MATERIALIZED (
            SELECT event_id, row_number() OVER (ORDER BY insert_order) AS n FROM taken
        )
        INSERT INTO {s}.positions
        SELECT (SELECT coalesce(max(global_position), 0) FROM {s}.positions) + n, event_id
        FROM ordered;
        GET DIAGNOSTICS moved = ROW_COUNT;
        RETURN moved;
    END $$;
"""


def _recreate(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _store_script(dsn: str, schema: str, *, tagged_gin: bool) -> str:
    store = PostgresEventStore(dsn, schema=schema)
    store.migrate()
    store.close()
    if tagged_gin:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP INDEX {schema}.idx_events_tags")
            conn.execute(
                f"CREATE INDEX idx_events_tags ON {schema}.events USING gin (tags)"
                " WITH (fastupdate = off) WHERE tags <> '{}'"
            )
    keys = sorted([dcb_key(schema, "store", ""), dcb_key(schema, "type", "BenchDeposited")])
    values = [
        f"'{{{keys[0]},{keys[1]}}}'",
        "'c-' || :k || 'N'",
        "'c-' || :k || 'N'",
        "'BenchAccount'",
        "gen_random_uuid()",
        "'BenchDeposited'",
        "1",
        PAYLOAD,
        "'{}'",
        "'{}'",
        "0",
        "0",
        "'BenchAccount'",
    ]
    parts = Statements(schema).append(1).decode().split("%s")
    statement = parts[0] + "".join(v + p for v, p in zip(values, parts[1:], strict=True))
    append = " ".join(statement.split()) + ";\n"
    appends = "".join(append.replace("'N'", f"'{n}'") for n in range(3))
    return appends + f"SELECT {schema}.esframework_sequence(1000, false);\n"


def _plain_script(dsn: str, schema: str, *, positions_table: bool) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(PLAIN_TABLE.format(s=schema))
        conn.execute((POSITIONS_TABLE if positions_table else PLAIN_UPDATE).format(s=schema))
    insert = (
        f"INSERT INTO {schema}.events (id, stream_id, stream_type, event_type, schema_version,"
        " event_data, metadata, version, tags) VALUES (gen_random_uuid(), 'c-' || :k || 'N',"
        f" 'BenchAccount', 'BenchDeposited', 1, {PAYLOAD}, '{{}}', 1, '{{}}')"
    )
    if positions_table:
        insert = (
            f"WITH e AS ({insert} RETURNING id, insert_order)"
            f" INSERT INTO {schema}.pending SELECT insert_order, id FROM e"
        )
    appends = "".join(insert.replace("'N'", f"'{n}'") + ";\n" for n in range(3))
    return appends + f"SELECT {schema}.sequence();\n"


def _run(dsn: str, script: Path, seconds: int) -> float:
    """Milliseconds per script run, as pgbench reports its average latency."""
    env = {**os.environ, "PGOPTIONS": "-c synchronous_commit=off"}
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        sys.exit("pass_variants: needs pgbench (PostgreSQL's client tools) on the PATH")
    output = subprocess.run(  # noqa: S603 -- pgbench, with our own arguments
        [pgbench, "-n", "-M", "prepared", "-c", "1", "-T", str(seconds), "-f", str(script), dsn],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("latency average"))
    return float(line.split()[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    variants = {
        "store": lambda s: _store_script(args.dsn, s, tagged_gin=False),
        "store_tagged_gin": lambda s: _store_script(args.dsn, s, tagged_gin=True),
        "plain_update": lambda s: _plain_script(args.dsn, s, positions_table=False),
        "positions_table": lambda s: _plain_script(args.dsn, s, positions_table=True),
    }
    with tempfile.TemporaryDirectory() as folder:
        scripts = {}
        for name, make in variants.items():
            schema = f"bench_pass_{name}"
            _recreate(args.dsn, schema)
            script = Path(folder) / f"{name}.sql"
            script.write_text("\\set k random(1, 4000000000000000)\n" + make(schema))
            scripts[name] = script
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, script in scripts.items():
                timings[name].append(_run(args.dsn, script, args.seconds) * 1000)
        for name in variants:
            _recreate(args.dsn, f"bench_pass_{name}")
    base = statistics.median(timings["store"])
    for name, values in timings.items():
        median = statistics.median(values)
        rounds = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:18} {median:7.0f} us per 3 appends + pass  ({base / median:.2f}x store)")
        print(f"{'':18} rounds: {rounds}")


if __name__ == "__main__":
    main()
