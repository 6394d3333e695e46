"""Conditional appends and reads by query through the PostgreSQL store, over 100,000 tagged
events: a quick harness for the figures of "Consistency boundaries" in the concepts.

A fresh schema is filled through the store (appends of 1,000 events, each tagged with one of
1,000 courses and one of 10,000 students), then, in alternating rounds:

- `read`: reads/s of a 2-tag OR query (a course's and a student's events, ~110 events);
- `append_1` / `append_4`: conditional appends/s of 1 event with 2 tags, its condition on
  that OR query after the store's head, from 1 and from 4 threads (each on its own
  courses and students, so no condition fails);
- `decide_1`: read, then conditional append on the read's head, per second, 1 thread;
- `plain_1`: unconditional appends/s of 1 event with 2 tags, for comparison.

    python benchmarks/dcb_store.py [--dsn DSN] [--rounds 3] [--events 100000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from esframework import AppendCondition, NewEvent, Query, QueryItem
from esframework.postgres import PostgresEventStore

SCHEMA = "bench_dcb_store"


def event(course: int, student: int) -> NewEvent:
    return NewEvent(
        uuid.uuid4(),
        "Subscribed",
        1,
        f'{{"course": {course}, "student": {student}}}',
        tags=(f"course:c{course}", f"student:s{student}"),
    )


def query(course: int, student: int) -> Query:
    return Query.of(
        QueryItem(types=["Subscribed"], tags=[f"course:c{course}"]),
        QueryItem(types=["Subscribed"], tags=[f"student:s{student}"]),
    )


def fill(store: PostgresEventStore, events: int) -> None:
    for start in range(0, events, 1000):
        batch = [event(i % 1000, i % 10000) for i in range(start, min(start + 1000, events))]
        store.append(f"fill-{start}", "Fill", batch, expected_version=0)
    store.head()  # waits until the sequencer positioned them


def rate(threads: int, count: int, work: Callable[[int, int], None]) -> float:
    barrier = threading.Barrier(threads + 1)

    def run(t: int) -> None:
        barrier.wait()
        for i in range(count):
            work(t, i)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    results: dict[str, list[float]] = {}
    with PostgresEventStore(args.dsn, schema=SCHEMA, max_size=8) as store:
        store.migrate()
        fill(store, args.events)
        salt = [0]

        def conditional(t: int, i: int) -> None:
            # Courses and students of their own per round and thread: no condition fails.
            course = 2000 + 2000 * salt[0] + 400 * t + i
            student = 20000 + 10000 * salt[0] + 10 * i + t
            q = query(course, student)
            store.append(
                f"c-{uuid.uuid4().hex}",
                "Subscription",
                [event(course, student)],
                expected_version=0,
                condition=AppendCondition(q, args.events),
            )

        def decide(_: int, i: int) -> None:
            course, student = i % 1000, 10_000_000 + 10_000 * salt[0] + i
            q = query(course, student)
            seen = store.read_query(q)
            store.append(
                f"d-{uuid.uuid4().hex}",
                "Subscription",
                [event(course, student)],
                expected_version=0,
                condition=AppendCondition(q, seen.head),
            )

        def plain(_: int, i: int) -> None:
            store.append(f"p-{uuid.uuid4().hex}", "Subscription", [event(i, i)], expected_version=0)

        def read(_: int, i: int) -> None:
            found = store.read_query(query(i % 1000, (7 * i) % 10000))
            assert len(found.events) >= 100

        scenarios: dict[str, tuple[int, Callable[[int, int], None]]] = {
            "read": (1, read),
            "append_1": (1, conditional),
            "append_4": (4, conditional),
            "decide_1": (1, decide),
            "plain_1": (1, plain),
        }
        for round_ in range(args.rounds):
            names = list(scenarios) if round_ % 2 == 0 else list(scenarios)[::-1]
            for name in names:
                salt[0] += 1
                threads, work = scenarios[name]
                results.setdefault(name, []).append(rate(threads, args.count, work))
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    for name, values in results.items():
        print(f"{name:<10} {statistics.median(values):>8.0f}/s")


if __name__ == "__main__":
    main()
