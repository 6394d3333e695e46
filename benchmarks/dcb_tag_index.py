"""Which PostgreSQL index makes a tag query cheap: a tag table or a GIN index on an array.

Plain SQL, no esframework: three schemas hold the same 100,000 events, each with two tags
(`course:c<i % 1000>`, 100 events per course, and `student:s<i % 10000>`, 10 per student),
in the column layout of the store's `events` table (positions given):

- `gin`: a `tags text[]` column with a GIN index (`fastupdate = off`, so reads never scan a
  pending list that grows between vacuums);
- `gin_fast`: the same with GIN's default `fastupdate = on`;
- `tag_table`: the tags in `event_tags(tag, event_id)` (a B-tree on both), joined back to
  `events` by id.

Measured, medians over alternating rounds:

- `read`: a 2-tag OR query (one course's and one student's `Subscribed` events, after
  position 0, in position order), reads/s on one connection;
- `check`: the condition check of a conditional append (does any event match after a
  position near the head, or with no position yet), checks/s;
- `append`: appends/s of one event with 2 tags, one connection, autocommit (the index
  upkeep on the write path).

    python benchmarks/dcb_tag_index.py [--dsn DSN] [--rounds 3] [--events 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

SCHEMAS = ("gin", "gin_fast", "tag_table")

TABLE = """
    CREATE TABLE {s}.events (
        id uuid PRIMARY KEY,
        stream_id varchar(255) NOT NULL,
        stream_type varchar(255) NOT NULL,
        event_type varchar(255) NOT NULL,
        event_data jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        version bigint NOT NULL,
        global_position bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        schema_version integer NOT NULL DEFAULT 1,
        insert_order bigint,
        tags text[] NOT NULL DEFAULT '{{}}',
        UNIQUE (stream_id, version)
    );
    CREATE UNIQUE INDEX ON {s}.events (global_position);
    CREATE INDEX ON {s}.events (event_type);
"""

FILL = """
    INSERT INTO {s}.events (id, stream_id, stream_type, event_type, event_data, version,
                            global_position, tags)
    SELECT gen_random_uuid(), 'sub-' || i, 'Subscription', 'Subscribed',
           jsonb_build_object('course', 'c' || i %% 1000, 'student', 's' || i %% 10000), 1, i,
           ARRAY['course:c' || i %% 1000, 'student:s' || i %% 10000]
    FROM generate_series(1, %s) AS i
"""

READ = {
    "gin": """
        SELECT id, event_type, event_data, global_position, tags FROM {s}.events
        WHERE global_position > 0 AND event_type = ANY(%(types)s)
          AND (tags @> %(t1)s OR tags @> %(t2)s)
        ORDER BY global_position
    """,
    "tag_table": """
        SELECT e.id, e.event_type, e.event_data, e.global_position, e.tags FROM {s}.events AS e
        WHERE e.id IN (SELECT event_id FROM {s}.event_tags WHERE tag = %(tag1)s
                       UNION SELECT event_id FROM {s}.event_tags WHERE tag = %(tag2)s)
          AND e.global_position > 0 AND e.event_type = ANY(%(types)s)
        ORDER BY e.global_position
    """,
}

CHECK = {
    "gin": """
        SELECT min(coalesce(global_position, 0)) FROM {s}.events
        WHERE (global_position > %(after)s OR global_position IS NULL)
          AND event_type = ANY(%(types)s) AND (tags @> %(t1)s OR tags @> %(t2)s)
    """,
    "tag_table": """
        SELECT min(coalesce(e.global_position, 0)) FROM {s}.events AS e
        WHERE e.id IN (SELECT event_id FROM {s}.event_tags WHERE tag = %(tag1)s
                       UNION SELECT event_id FROM {s}.event_tags WHERE tag = %(tag2)s)
          AND (e.global_position > %(after)s OR e.global_position IS NULL)
          AND e.event_type = ANY(%(types)s)
    """,
}

APPEND = {
    "gin": """
        INSERT INTO {s}.events (id, stream_id, stream_type, event_type, event_data, version,
                                tags)
        VALUES (%(id)s, %(stream)s, 'Subscription', 'Subscribed', '{{}}', 1, %(tags)s)
    """,
    "tag_table": """
        WITH e AS (
            INSERT INTO {s}.events (id, stream_id, stream_type, event_type, event_data,
                                    version, tags)
            VALUES (%(id)s, %(stream)s, 'Subscription', 'Subscribed', '{{}}', 1, %(tags)s)
            RETURNING id
        )
        INSERT INTO {s}.event_tags (tag, event_id) SELECT unnest(%(tags)s::text[]), id FROM e
    """,
}


def setup(conn: psycopg.Connection[Any], events: int) -> None:
    for schema in SCHEMAS:
        conn.execute(f"DROP SCHEMA IF EXISTS bench_tags_{schema} CASCADE")
        conn.execute(f"CREATE SCHEMA bench_tags_{schema}")
        s = f"bench_tags_{schema}"
        conn.execute(TABLE.format(s=s))
        conn.execute(FILL.format(s=s), (events,))
        if schema == "tag_table":
            conn.execute(
                f"CREATE TABLE {s}.event_tags (tag text NOT NULL, event_id uuid NOT NULL, "
                "PRIMARY KEY (tag, event_id))"
            )
            conn.execute(f"INSERT INTO {s}.event_tags SELECT unnest(tags), id FROM {s}.events")
        else:
            fast = "on" if schema == "gin_fast" else "off"
            conn.execute(f"CREATE INDEX ON {s}.events USING gin (tags) WITH (fastupdate = {fast})")
        conn.execute(f"VACUUM ANALYZE {s}.events")
        if schema == "tag_table":
            conn.execute(f"VACUUM ANALYZE {s}.event_tags")


def rate(run: Callable[[int], None], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        run(i)
    return count / (time.perf_counter() - start)


def measure(conn: psycopg.Connection[Any], schema: str, events: int) -> dict[str, float]:
    s = f"bench_tags_{schema}"
    kind = "tag_table" if schema == "tag_table" else "gin"
    rng = random.Random(7)
    read, check, append = (q[kind].format(s=s).encode() for q in (READ, CHECK, APPEND))

    def params() -> dict[str, Any]:
        course, student = f"course:c{rng.randrange(1000)}", f"student:s{rng.randrange(10000)}"
        return {
            "types": ["Subscribed", "CourseDefined"],
            "t1": [course],
            "t2": [student],
            "tag1": course,
            "tag2": student,
            "after": events - 50,
        }

    def do_read(_: int) -> None:
        rows = conn.execute(read, params(), prepare=True).fetchall()
        assert len(rows) >= 100

    def do_check(_: int) -> None:
        conn.execute(check, params(), prepare=True).fetchone()

    def do_append(_: int) -> None:
        conn.execute(
            append,
            {
                "id": uuid.uuid4(),
                "stream": f"new-{uuid.uuid4()}",
                "tags": [f"course:c{rng.randrange(1000)}", f"student:s{rng.randrange(10000)}"],
            },
            prepare=True,
        )

    return {
        "read": rate(do_read, 300),
        "check": rate(do_check, 1000),
        "append": rate(do_append, 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {s: {} for s in SCHEMAS}
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        setup(conn, args.events)
        for round_ in range(args.rounds):
            order = SCHEMAS if round_ % 2 == 0 else SCHEMAS[::-1]
            for schema in order:
                for name, value in measure(conn, schema, args.events).items():
                    results[schema].setdefault(name, []).append(value)
        print(f"{'index':<10} {'read/s':>9} {'check/s':>9} {'append/s':>9}")
        for schema in SCHEMAS:
            medians = {k: statistics.median(v) for k, v in results[schema].items()}
            print(
                f"{schema:<10} {medians['read']:>9.0f} {medians['check']:>9.0f} "
                f"{medians['append']:>9.0f}"
            )
        for schema in SCHEMAS:
            conn.execute(f"DROP SCHEMA bench_tags_{schema} CASCADE")


if __name__ == "__main__":
    main()
