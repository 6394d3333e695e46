"""Positions that a server crash takes back: a reader that saw them must miss nothing after.

A sequencing pass commits without waiting for its WAL flush (see `_sequencer.py`), so a crash
can lose the positions of the last passes after readers have seen them. Their events are
positioned again after the restart, and a reader that keeps its checkpoint outside the
database resumes from a position given back: no event it has not seen may come at or below
that position.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg

from esframework.postgres import PostgresEventStore
from tests.fixtures.cluster import Cluster

SCHEMA = "lost"

# The server's processes that write WAL out on their own: stopped, they leave a commit made
# without waiting for its flush in memory only, as the moment before a crash does.
WAL_WRITERS = ("walwriter", "background writer", "checkpointer", "autovacuum launcher")


def insert(conn: psycopg.Connection[Any], stream_id: str) -> uuid.UUID:
    """Append version 1 of `stream_id` by hand (the store's trigger still checks it)."""
    event_id = uuid.uuid4()
    conn.execute(
        f"INSERT INTO {SCHEMA}.events (id, stream_id, stream_type, event_type, event_data, "
        "version) VALUES (%s, %s, 'S', 'Tick', '{\"n\": 1}', 1)",
        (event_id, stream_id),
    )
    return event_id


def start_pass(conn: psycopg.Connection[Any]) -> None:
    """Run a pass as the store's sequencer does, left open: the caller commits it."""
    conn.execute("SET synchronous_commit = off")
    conn.execute(f"SELECT {SCHEMA}.esframework_sequence(100, false)")


def positions(conn: psycopg.Connection[Any], after: int) -> list[tuple[uuid.UUID, int]]:
    rows = conn.execute(
        f"SELECT id, global_position FROM {SCHEMA}.events WHERE global_position > %s "
        "ORDER BY global_position",
        (after,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


@contextlib.contextmanager
def wal_writers_stopped(dsn: str) -> Iterator[None]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = ANY(%s)", (list(WAL_WRITERS),)
        ).fetchall()
    pids = [row[0] for row in rows]
    assert len(pids) >= 3, pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_reader_misses_nothing_when_a_crash_takes_back_positions_it_saw(
    cluster: Cluster,
) -> None:
    """A late commit makes the lost passes' order differ from insert order: `late` was
    inserted first but committed while the first pass ran, so that pass positioned only
    `early`, and the next one `late`. Renumbered after the crash in insert order, `late`
    would take the position the reader already holds for `early`, and be skipped."""
    with PostgresEventStore(cluster.dsn, schema=SCHEMA) as store:
        store.migrate()
    with contextlib.ExitStack() as connections:
        late_writer, first_pass, second_pass = (
            connections.enter_context(psycopg.connect(cluster.dsn)) for _ in range(3)
        )
        writer, reader = (
            connections.enter_context(psycopg.connect(cluster.dsn, autocommit=True))
            for _ in range(2)
        )
        late = insert(late_writer, "late")  # its transaction stays open
        early = insert(writer, "early")
        with wal_writers_stopped(cluster.dsn):
            start_pass(first_pass)
            late_writer.commit()  # waits for its flush: the pass's commit is not in it
            first_pass.commit()
            seen = positions(reader, 0)
            assert [event_id for event_id, _ in seen] == [early]
            checkpoint = seen[-1][1]  # kept where the crash cannot reach it
            start_pass(second_pass)
            second_pass.commit()
            assert [event_id for event_id, _ in positions(reader, checkpoint)] == [late]
            cluster.kill()
    cluster.start()
    with PostgresEventStore(cluster.dsn, schema=SCHEMA) as store:
        store.sequence()
        resumed = store.read_all(after=checkpoint)
        everything = store.read_all()
    assert late in {e.event_id for e in resumed}, (
        f"event {late} was positioned at or below the reader's checkpoint {checkpoint}: "
        f"{[(e.stream_id, e.position) for e in everything]}"
    )
    assert sorted(e.position for e in everything) == [e.position for e in everything]
