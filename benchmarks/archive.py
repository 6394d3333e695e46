"""Archiving: appends, loads and global reads on a PostgreSQL store with 1,000,000 archived
and 100,000 live events, compared with the same store before archiving.

Two schemas hold the same events: `bench_archive_before` (every stream truncated or closed,
nothing archived yet: all 1,100,000 events in `events`) and `bench_archive_after` (the same,
then archived with `store.archive()`: 1,000,000 events in `events_archive`, 100,000 left in
`events`). Rounds alternate which schema goes first; the table shows medians and the
after/before ratios.

The fill is direct, into the store's own schema, for speed: one `INSERT ... SELECT
generate_series` writes the rows the store would have written (the columns of migration 1
and 3, payloads as `Serializer` writes them, positions and insert order assigned as the
sequencer would), with the table's triggers off for that session
(`session_replication_role = replica`, which needs a superuser); then the truncations the
store would have recorded and one snapshot per truncated stream are copied in. Every later
write (the archiving, the appends) goes through the store.

- cold streams: 10,000 of 101 events each, positions 1 to 1,010,000. Half are closed (event
  101 is their tombstone), half truncated before version 101 (a snapshot at 101): 100 events
  of each are archivable, event 101 stays.
- live streams: 900 of 100 events each (90,000), positions after the cold ones.

So 1,000,000 events are archived and 100,000 stay live. Figures (rates: higher is better):

- `append`: appends/s, one event at a time to a live stream at its known version;
- `load`: loads/s of a live stream (100+ events, no snapshot);
- `load_truncated`: loads/s of a truncated cold stream (its snapshot, no events after it);
- `read_head`: empty global reads/s at the head (an idle live subscription's poll);
- `catchup`: events/s reading the first 100,000 positions of the global order (all archived
  in `after`), as a new subscription or a rebuild would.

    python benchmarks/archive.py [--dsn DSN] [--rounds 5] [--quick] [--json FILE]

`--quick` is 10x smaller, to see that it works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

# Run as a script, the benchmarks directory is on the path.
from _esframework_side import STREAM_TYPE, BenchAccount, Deposited
from psycopg import sql

from esframework import Repository, Serializer
from esframework.postgres import PostgresEventStore

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMAS = {
    "before": "bench_archive_before",
    "after": "bench_archive_after",
    "clustered": "bench_archive_clustered",
}
METRICS = ("append", "load", "load_truncated", "read_head", "catchup")


@dataclass(frozen=True)
class Sizes:
    cold_streams: int = 10_000
    cold_events: int = 101  # per stream, the last one stays live
    live_streams: int = 900
    live_events: int = 100
    appends: int = 500
    seconds: float = 1.5
    catchup: int = 100_000
    archive_batch: int = 10_000

    def quick(self) -> Sizes:
        return replace(
            self,
            cold_streams=self.cold_streams // 10,
            live_streams=self.live_streams // 10,
            appends=self.appends // 10,
            seconds=self.seconds / 5,
            catchup=self.catchup // 10,
        )

    @property
    def archived(self) -> int:
        return self.cold_streams * (self.cold_events - 1)

    @property
    def live(self) -> int:
        return self.cold_streams + self.live_streams * self.live_events


_AMOUNT = "trim_scale((1 + v %% 10000) / 100.0)::text"

# Positions are interleaved across streams, version by version: cold streams' history first
# (the old part of the global order), then the live streams'.
_FILL = f"""
INSERT INTO {{s}}.events (id, stream_id, stream_type, event_type, schema_version, event_data,
                          metadata, version, global_position, insert_order, created_at)
SELECT gen_random_uuid(), stream, {{stream_type}},
       CASE WHEN closing THEN '$StreamClosed' ELSE 'BenchDeposited' END, 1,
       CASE WHEN closing THEN '{{{{}}}}'::jsonb
            ELSE jsonb_build_object('amount', {_AMOUNT}, 'note', 'deposit ' || v) END,
       '{{{{}}}}'::jsonb, v, position, position, now()
FROM (
    SELECT 'cold-' || s AS stream, v, (v - 1) * %(cold)s::bigint + s AS position,
           s %% 2 = 0 AND v = %(cold_events)s AS closing
    FROM generate_series(1, %(cold)s) AS s, generate_series(1, %(cold_events)s) AS v
    UNION ALL
    SELECT 'live-' || s, v, %(cold)s::bigint * %(cold_events)s + (v - 1) * %(live)s + s, false
    FROM generate_series(1, %(live)s) AS s, generate_series(1, %(live_events)s) AS v
) AS rows
ORDER BY position
"""

# What the store would have recorded: the tombstones' truncations and those of the
# truncated streams (before their snapshot's version).
_TRUNCATIONS = """
INSERT INTO {s}.stream_truncations (stream_id, before_version)
SELECT 'cold-' || s, %(cold_events)s FROM generate_series(1, %(cold)s) AS s
"""

_COPY_SNAPSHOT = """
INSERT INTO {s}.snapshots (stream_id, stream_type, snapshot_data, version, state_schema)
SELECT 'cold-' || s, stream_type, snapshot_data, version, state_schema
FROM {s}.snapshots CROSS JOIN generate_series(3, %(cold)s, 2) AS s
WHERE stream_id = 'cold-1'
"""


def fill(dsn: str, schema: str, sizes: Sizes) -> float:
    """Create `schema`, migrate it and fill it; return the seconds it took."""
    started = time.perf_counter()
    name = sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))
    with PostgresEventStore(dsn, schema=schema) as store:
        store.migrate()
    params = {
        "cold": sizes.cold_streams,
        "cold_events": sizes.cold_events,
        "live": sizes.live_streams,
        "live_events": sizes.live_events,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no triggers
            conn.execute(
                sql.SQL(_FILL).format(s=name, stream_type=sql.Literal(STREAM_TYPE)), params
            )
            conn.execute(sql.SQL(_TRUNCATIONS).format(s=name), params)
        conn.execute(
            sql.SQL("SELECT setval({}, (SELECT max(insert_order) FROM {}.events))").format(
                sql.Literal(f"{schema}.events_insert_order"), name
            )
        )
    with PostgresEventStore(dsn, schema=schema) as store:  # one snapshot, through the store
        accounts = Repository(BenchAccount, store=store)
        accounts.take_snapshot(accounts.load("cold-1"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(_COPY_SNAPSHOT).format(s=name), params)
    return time.perf_counter() - started


_TABLES = ("events", "events_archive", "stream_truncations", "snapshots")


def copy_and_cluster(dsn: str, source: str, schema: str) -> float:
    """Copy the archived schema (rows in their physical order), then CLUSTER the copy's
    archive by position, as an operator would; return the seconds CLUSTER took."""
    name = sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))
    with PostgresEventStore(dsn, schema=schema) as store:
        store.migrate()
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no triggers
            conn.execute(sql.SQL("DELETE FROM {}.stream_truncations").format(name))
            for table in _TABLES:
                conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                        sql.Identifier(schema, table), sql.Identifier(source, table)
                    )
                )
        conn.execute(
            sql.SQL("SELECT setval({}, (SELECT max(insert_order) FROM {}.events))").format(
                sql.Literal(f"{schema}.events_insert_order"), name
            )
        )
        started = time.perf_counter()
        conn.execute(
            sql.SQL("CLUSTER {} USING idx_events_archive_global_position").format(
                sql.Identifier(schema, "events_archive")
            )
        )
        return time.perf_counter() - started


def vacuum(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in _TABLES:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(schema, table)))


def archive(dsn: str, schema: str, sizes: Sizes) -> dict[str, float]:
    """Archive everything through the store, as `esframework archive` does."""
    with PostgresEventStore(dsn, schema=schema) as store:
        waiting = store.archivable()
        started = time.perf_counter()
        moved = 0
        while batch := store.archive(max_events=sizes.archive_batch):
            moved += batch
        seconds = time.perf_counter() - started
        assert moved == waiting == sizes.archived, (moved, waiting)
    return {"events": moved, "seconds": seconds, "events_per_s": moved / seconds}


class Workload:
    """One schema's store and the state the measurements keep between rounds."""

    def __init__(self, dsn: str, schema: str, sizes: Sizes) -> None:
        self.store = PostgresEventStore(dsn, schema=schema)
        self.accounts = Repository(BenchAccount, store=self.store)
        self.sizes = sizes
        self.serializer = Serializer()
        self.versions = {f"live-{s}": sizes.live_events for s in range(1, sizes.live_streams + 1)}
        self.appended = 0

    def close(self) -> None:
        self.store.close()

    def append(self, order: list[str]) -> float:
        started = time.perf_counter()
        for stream in order:
            self.appended += 1
            event = Deposited(amount=Decimal(self.appended) / 100, note="appended")
            record = self.serializer.encode(event, event_id=uuid.uuid4())
            self.store.append(stream, STREAM_TYPE, [record], expected_version=self.versions[stream])
            self.versions[stream] += 1
        return len(order) / (time.perf_counter() - started)

    def load(self, streams: list[str]) -> float:
        return _for_seconds(lambda i: self.accounts.load(streams[i % len(streams)]), self.sizes)

    def read_head(self) -> float:
        head = self.store.head()
        return _for_seconds(lambda _: self.store.read_all(after=head), self.sizes)

    def catchup(self) -> float:
        started = time.perf_counter()
        read = 0
        for _ in self.store.iter_all(page_size=1000):
            read += 1
            if read == self.sizes.catchup:
                break
        return read / (time.perf_counter() - started)


def _for_seconds(action: Any, sizes: Sizes) -> float:
    count = 0
    started = time.perf_counter()
    while True:
        action(count)
        count += 1
        elapsed = time.perf_counter() - started
        if count >= 3 and elapsed >= sizes.seconds:
            return count / elapsed


def measure(workload: Workload, rng: random.Random) -> dict[str, float]:
    sizes = workload.sizes
    live = [f"live-{rng.randint(1, sizes.live_streams)}" for _ in range(sizes.appends)]
    truncated = [f"cold-{2 * rng.randint(0, sizes.cold_streams // 2 - 1) + 1}" for _ in range(50)]
    return {
        "append": workload.append(live),
        "load": workload.load(live[:50]),
        "load_truncated": workload.load(truncated),
        "read_head": workload.read_head(),
        "catchup": workload.catchup(),
    }


def environment(dsn: str) -> dict[str, Any]:
    import importlib.metadata

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgresql": row[0] if row else None,
        "esframework": importlib.metadata.version("esframework"),
        "psycopg": importlib.metadata.version("psycopg"),
    }


def rounds(args: argparse.Namespace, sizes: Sizes) -> dict[str, dict[str, list[float]]]:
    """Measure every schema `args.rounds` times, rotating which goes first; then drop
    the schemas (unless `--keep`)."""
    workloads = {side: Workload(args.dsn, schema, sizes) for side, schema in SCHEMAS.items()}
    results: dict[str, dict[str, list[float]]] = {s: {m: [] for m in METRICS} for s in SCHEMAS}
    try:
        for number in range(args.rounds):
            sides = list(SCHEMAS)
            order = sides[number % len(sides) :] + sides[: number % len(sides)]
            for side in order:  # the same random choices for both sides in a round
                for metric, value in measure(workloads[side], random.Random(number)).items():
                    results[side][metric].append(value)
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
    finally:
        for workload in workloads.values():
            workload.close()
        if not args.keep:
            with psycopg.connect(args.dsn, autocommit=True) as conn:
                for schema in SCHEMAS.values():
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("ESFRAMEWORK_BENCH_DSN", DEFAULT_DSN))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the schemas afterwards")
    args = parser.parse_args(argv)
    sizes = Sizes().quick() if args.quick else Sizes()
    began = time.perf_counter()
    filled = {}
    for side in ("before", "after"):
        print(f"filling {SCHEMAS[side]} ...", file=sys.stderr)
        filled[side] = fill(args.dsn, SCHEMAS[side], sizes)
    print("archiving ...", file=sys.stderr)
    archived = archive(args.dsn, SCHEMAS["after"], sizes)
    print("copying and clustering ...", file=sys.stderr)
    archived["cluster_seconds"] = copy_and_cluster(args.dsn, SCHEMAS["after"], SCHEMAS["clustered"])
    for schema in SCHEMAS.values():
        vacuum(args.dsn, schema)
    results = rounds(args, sizes)
    medians = {s: {m: statistics.median(v) for m, v in r.items()} for s, r in results.items()}
    ratios = {
        side: {m: medians[side][m] / medians["before"][m] for m in METRICS}
        for side in ("after", "clustered")
    }
    print(f"{'metric':<16}{'before':>12}{'after':>12}{'clustered':>12}{'ratio':>8}{'cl.':>8}")
    for metric in METRICS:
        print(
            f"{metric:<16}"
            + "".join(f"{medians[side][metric]:>12,.0f}" for side in SCHEMAS)
            + "".join(f"{ratios[side][metric]:>8.2f}" for side in ("after", "clustered"))
        )
    print(
        f"archiving: {archived['events']:,} events in {archived['seconds']:.1f} s "
        f"({archived['events_per_s']:,.0f} events/s); CLUSTER of the archive: "
        f"{archived['cluster_seconds']:.1f} s"
    )
    report = {
        "sizes": {**asdict(sizes), "archived": sizes.archived, "live": sizes.live},
        "rounds": args.rounds,
        "quick": args.quick,
        "results": results,
        "medians": medians,
        "ratios": ratios,
        "archive": archived,
        "fill_seconds": filled,
        "environment": environment(args.dsn),
        "elapsed_s": time.perf_counter() - began,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
