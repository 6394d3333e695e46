"""The gap test: a reader paging by position never skips an event that commits late."""

from __future__ import annotations

import random
import threading
import time
import uuid

import orjson
import pytest

from esframework import NewEvent, StoredEvent
from esframework.postgres import PostgresEventStore


class RollbackError(Exception):
    pass


def events(count: int) -> list[NewEvent]:
    return [
        NewEvent(event_id=uuid.uuid4(), event_type="Tick", schema_version=1, data='{"n": 1}')
        for _ in range(count)
    ]


def append_in_transaction(
    store: PostgresEventStore,
    stream_id: str,
    batch: list[NewEvent],
    expected: int,
    *,
    hold: float = 0.0,
    rollback: bool = False,
) -> None:
    """Append inside a longer unit of work, held open for `hold` seconds."""
    try:
        with store.transaction():
            store.append(stream_id, "Gap", batch, expected_version=expected)
            time.sleep(hold)
            if rollback:
                raise RollbackError
    except RollbackError:
        pass


@pytest.mark.parametrize("run", range(3))
def test_reader_sees_every_committed_event_once_in_order(
    postgres_store: PostgresEventStore, run: int
) -> None:
    """Concurrent writers, random rollbacks and one transaction held open for a second,
    while a reader polls: every committed event is seen exactly once, in ascending
    position, consistent with every stream's versions."""
    rng = random.Random(run)
    committed: set[uuid.UUID] = set()
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def writer(stream_id: str) -> None:
        version = 0
        for _ in range(40):
            batch = events(rng.randint(1, 3))
            if rng.random() < 0.2:  # draw positions, then roll back: holes in the sequence
                append_in_transaction(postgres_store, stream_id, batch, version, rollback=True)
                continue
            result = postgres_store.append(stream_id, "Gap", batch, expected_version=version)
            version = result.version
            with lock:
                committed.update(e.event_id for e in batch)

    def slow_writer() -> None:
        time.sleep(0.05)
        batch = events(2)
        append_in_transaction(postgres_store, "slow", batch, 0, hold=1.0)
        with lock:
            committed.update(e.event_id for e in batch)

    seen: list[StoredEvent] = []

    def reader() -> None:
        after = 0
        while True:
            done = not writing.is_set()
            page = postgres_store.read_all(after=after, limit=50)
            seen.extend(page)
            if page:
                after = page[-1].position
            elif done:
                return
            else:
                time.sleep(0.005)

    threads = [threading.Thread(target=writer, args=(f"s{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=slow_writer))
    reading = threading.Thread(target=reader)
    reading.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    reading.join()

    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == committed, "a committed event was skipped"
    positions = [e.position for e in seen]
    assert positions == sorted(positions)
    last_version: dict[str, int] = {}
    for e in seen:
        assert e.version == last_version.get(e.stream_id, 0) + 1, e
        last_version[e.stream_id] = e.version
    assert last_version["slow"] == 2
    assert all(orjson.loads(e.data) == {"n": 1} for e in seen)
