"""esframework's side of the `dcb` group: `PostgresEventStore.read_query` and `append` with
an `AppendCondition`, through the store's public API (see `_dcb.py` for the workload).

Each conditional append goes to a new stream (`dcb-<uuid>`, expected version `NO_STREAM`),
as a decision's save does: the condition, not the stream, is the consistency boundary.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from _common import drop_schema, recreate_schema
from _dcb import EVENT_TYPE, PREFILL_CHUNK, event_data, prefill_tags, vacuum_schema
from _esframework_side import open_store

from esframework import AppendCondition, ExpectedVersion, NewEvent, Query, QueryItem
from esframework.postgres import PostgresEventStore

__all__ = ["EsframeworkDcbSide", "open_client"]

STREAM_TYPE = "Subscription"


def _query(tags: Sequence[str]) -> Query:
    return Query.of(*(QueryItem(types=[EVENT_TYPE], tags=[tag]) for tag in tags))


def _event(tags: Sequence[str], data: bytes) -> NewEvent:
    return NewEvent(uuid.uuid4(), EVENT_TYPE, 1, data.decode(), tags=tuple(sorted(tags)))


class _Client:
    """The store-level operations of one connection's worth of store."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store

    def head_of(self, tags: Sequence[str]) -> int:
        return self.store.read_query(_query(tags)).head

    def read(self, tags: Sequence[str]) -> tuple[list[bytes | str], int]:
        result = self.store.read_query(_query(tags))
        return [e.data for e in result.events], result.head

    def append(self, tags: Sequence[str], data: bytes, after: int) -> None:
        self.store.append(
            f"dcb-{uuid.uuid4()}",
            STREAM_TYPE,
            [_event(tags, data)],
            expected_version=ExpectedVersion.NO_STREAM,
            condition=AppendCondition(_query(tags), after),
        )

    def close(self) -> None:
        self.store.close()


def open_client(dsn: str, schema: str) -> _Client:
    """A writer's own store (and connections), with the DSN's session settings."""
    return _Client(open_store(dsn, schema, migrate=False, max_size=2))


class EsframeworkDcbSide:
    name = "esframework"

    def __init__(self, dsn: str, schema: str = "bench_dcb_esframework") -> None:
        self.dsn = dsn
        self.schema = schema
        self.decided = 0
        self._client: _Client | None = None

    @property
    def client(self) -> _Client:
        assert self._client is not None, "setup() first"
        return self._client

    def setup(self, events: int) -> None:
        recreate_schema(self.dsn, self.schema)
        self._client = _Client(open_store(self.dsn, self.schema))
        store = self.client.store
        batch: list[NewEvent] = []
        for i, course, student in prefill_tags(events):
            batch.append(_event((course, student), event_data(course, student)))
            if len(batch) == PREFILL_CHUNK or i == events - 1:
                store.append(f"prefill-{i}", "Prefill", batch, expected_version=0)
                batch = []
        store.head()  # waits until the prefill is positioned
        vacuum_schema(self.dsn, self.schema)

    def read(self, tags: Sequence[str]) -> tuple[list[bytes | str], int]:
        return self.client.read(tags)

    def append(self, tags: Sequence[str], data: bytes, after: int) -> None:
        self.client.append(tags, data, after)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        drop_schema(self.dsn, self.schema)
