"""A network partition (packets dropped, nothing closed) fails store calls within a bound.

Without the store's tcp_user_timeout and connect_timeout, an append sent into the partition
waits for an answer forever, and neither `pool_timeout`, `lock_timeout` nor the store's
reconnects engage. With them, it fails with `StoreUnavailableError`, and the store works
again once the network does.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from esframework import ExpectedVersion, NewEvent
from esframework.errors import StoreUnavailableError
from esframework.postgres import AsyncPostgresEventStore, PostgresEventStore
from tests.fixtures import partition as partitions

# In CI (`.ci/run` sets CI) a machine that cannot cut a link fails these tests instead.
pytestmark = pytest.mark.skipif(
    not partitions.available() and not os.environ.get("CI"),
    reason="cutting a network link needs root and `ip`",
)

# Short bounds, so the test is fast; the defaults are 20 s and 10 s.
BOUNDS: dict[str, Any] = {"tcp_user_timeout": 1, "connect_timeout": 2, "pool_timeout": 3}
GUARD = 60.0  # seconds: only so that a broken store fails the test instead of hanging it


@pytest.fixture
def partition(postgres_dsn: str) -> Iterator[partitions.Partition]:
    cut = partitions.Partition(postgres_dsn)
    try:
        yield cut
    finally:
        cut.close()


def an_event() -> NewEvent:
    return NewEvent(event_id=uuid.uuid4(), event_type="Noted", schema_version=1, data="{}")


def outcome(call: Callable[[], object]) -> BaseException | None:
    """Run `call` on a thread; return what it raised (None: it returned), failing if it hangs."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GUARD)
    assert raised, f"the call was still blocked after {GUARD} s"
    return raised[0]


def eventually(call: Callable[[], object]) -> None:
    deadline = time.monotonic() + GUARD
    while (error := outcome(call)) is not None:
        assert time.monotonic() < deadline, f"the store did not recover: {error!r}"
        time.sleep(0.2)


def test_an_append_into_a_partition_fails_and_the_store_recovers(
    partition: partitions.Partition, postgres_schema: str
) -> None:
    with PostgresEventStore(partition.dsn, schema=postgres_schema, **BOUNDS) as store:
        store.migrate()
        store.append("s-1", "Note", [an_event()], expected_version=ExpectedVersion.NO_STREAM)
        partition.cut()
        error = outcome(
            lambda: store.append("s-2", "Note", [an_event()], expected_version=ExpectedVersion.ANY)
        )
        assert isinstance(error, StoreUnavailableError), repr(error)
        partition.heal()
        eventually(
            lambda: store.append("s-3", "Note", [an_event()], expected_version=ExpectedVersion.ANY)
        )
        assert [e.version for e in store.read_stream("s-3")] == [1]
        assert [e.version for e in store.read_stream("s-1")] == [1]


def test_an_async_append_into_a_partition_fails_and_the_store_recovers(
    partition: partitions.Partition, postgres_schema: str, loop_thread: Any
) -> None:
    async def opened() -> AsyncPostgresEventStore:
        store = AsyncPostgresEventStore(partition.dsn, schema=postgres_schema, **BOUNDS)
        await store.migrate()
        return store

    async def versions(stream: str) -> list[int]:
        return [e.version async for e in store.read_stream(stream)]

    store = loop_thread.run(opened())

    def append(stream: str) -> Callable[[], object]:
        return lambda: loop_thread.run(
            store.append(stream, "Note", [an_event()], expected_version=ExpectedVersion.ANY)
        )

    try:
        append("s-1")()
        partition.cut()
        error = outcome(append("s-2"))
        assert isinstance(error, StoreUnavailableError), repr(error)
        partition.heal()
        eventually(append("s-3"))
        assert loop_thread.run(versions("s-3")) == [1]
    finally:
        loop_thread.run(store.close())
