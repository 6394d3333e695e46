"""PostgreSQL only: races on the write path that must not store an event twice, lose an
acknowledged one, or let a conflicting decision through. Each is made deterministic by holding
one side's transaction open at the moment that matters."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg import sql

from esframework import AppendResult, ExpectedVersion, SnapshotRecord
from esframework.postgres import PostgresEventStore
from tests.stores.test_contract import make


def wait_for_lock_wait(conninfo: str) -> None:
    """Wait until some session of the server waits for a lock (a row, a transaction id or
    an advisory lock)."""
    deadline = time.monotonic() + 20
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            assert time.monotonic() < deadline, "no session came to wait for the lock"
            time.sleep(0.01)


def test_an_any_version_retry_racing_the_archiving_pass_is_a_retry_not_a_second_copy(
    postgres_store: PostgresEventStore,
) -> None:
    """An append expecting any version whose answer was lost is retried while the archiving
    pass moves its (committed) event: the pass has inserted it into the archive and deleted
    it from `events`, not committed yet. The retry's insert check looks in the archive
    before the primary key does: it finds nothing there (the pass has not committed), then
    the primary key waits for the pass, whose commit removes the live row, and lets the
    insert through. The event would be stored twice, once archived and once again as the
    stream's next version, and delivered twice."""
    store = postgres_store
    first = make(1)
    store.append("s", "S", first, expected_version=ExpectedVersion.ANY)
    store.append("s", "S", make(2), expected_version=1)
    store.save_snapshot(
        SnapshotRecord(stream_id="s", stream_type="S", state_schema="x", version=3, data="{}")
    )
    store.truncate_before("s", 3)
    store.sequence()
    with psycopg.connect(store.conninfo) as archiving:  # the pass, left open
        moved = archiving.execute(
            sql.SQL("SELECT {}.esframework_archive(100)").format(sql.Identifier(store.schema))
        ).fetchone()
        assert moved == (2,)
        outcome: list[Any] = []

        def retry() -> None:
            try:
                outcome.append(store.append("s", "S", first, expected_version=ExpectedVersion.ANY))
            except Exception as error:  # reported below
                outcome.append(error)

        retrying = threading.Thread(target=retry)
        retrying.start()
        wait_for_lock_wait(store.conninfo)
        archiving.commit()
        retrying.join(20)
    assert outcome == [AppendResult(stream_id="s", version=1, positions=())]
    stored = store.read_all()
    assert [e.event_id for e in stored].count(first[0].event_id) == 1, [
        (e.version, e.event_id) for e in stored
    ]
    assert store.stream_version("s") == 3
