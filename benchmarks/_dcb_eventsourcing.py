"""The peer's side of the `dcb` group: `eventsourcing.dcb`'s tag-table recorder on
PostgreSQL (`PostgresDCBRecorderTT`: an events table and a tags table with a B-tree on
(tag, id)), used at the level of its recorder, `read(query)` and `append(events, condition)`,
as esframework's side uses its store (see `_dcb.py` for the workload).

The recorder is built as the peer's own `PostgresTTDCBFactory.dcb_recorder()` builds it, on
a `PostgresDatastore` of the benchmark's connection fields, in a schema of its own. Session
settings (the simulated commit flush) reach its connections through libpq's `PGOPTIONS`, set
while its pool connects, as for the peer's aggregate writers in `_eventsourcing_side.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from _common import check_session_settings, drop_schema, recreate_schema
from _dcb import EVENT_TYPE, PREFILL_CHUNK, event_data, prefill_tags, vacuum_schema
from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem
from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

__all__ = ["EventsourcingDcbSide", "open_client"]

TABLE = "dcb_events"  # the recorder adds its suffixes: dcb_events_tt_main, dcb_events_tt_tag


def _query(tags: Sequence[str]) -> DCBQuery:
    return DCBQuery(items=[DCBQueryItem(types=[EVENT_TYPE], tags=[tag]) for tag in tags])


@contextmanager
def _pgoptions(dsn: str, schema: str) -> Iterator[None]:
    """libpq reads `PGOPTIONS` when a connection opens: the DSN's options for the block.

    With `search_path` set to the recorder's schema: its tags table's foreign key names the
    events table without a schema (`REFERENCES dcb_events_tt_main (id)`), so creating the
    tables in any schema but the first of the search path fails.
    """
    options = f"-c search_path={schema} {conninfo_to_dict(dsn).get('options', '')}".strip()
    before = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = options
    try:
        yield
    finally:
        if before is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = before


class _Client:
    def __init__(self, dsn: str, schema: str, *, create: bool = False) -> None:
        info = conninfo_to_dict(dsn)
        with _pgoptions(dsn, schema):
            self.datastore = PostgresDatastore(
                dbname=str(info.get("dbname", "postgres")),
                host=str(info.get("host", "localhost")),
                port=str(info.get("port", "5432")),
                user=str(info.get("user", "postgres")),
                password=str(info.get("password", "")),
                schema=schema,
                pool_size=1,  # one connection per writer, as on esframework's side
            )
            self.recorder = PostgresDCBRecorderTT(self.datastore, events_table_name=TABLE)
            if create:
                self.recorder.create_table()
            with self.datastore.get_connection() as conn:
                check_session_settings(conn, dsn, f"eventsourcing dcb {schema}")

    def head_of(self, tags: Sequence[str]) -> int:
        return self.recorder.read(_query(tags)).head or 0

    def read(self, tags: Sequence[str]) -> tuple[list[bytes | str], int]:
        response = self.recorder.read(_query(tags))
        datas: list[bytes | str] = [e.event.data for e in response]
        return datas, response.head or 0

    def append(self, tags: Sequence[str], data: bytes, after: int) -> None:
        # Raises the peer's IntegrityError if the condition fails (never, in this workload).
        self.recorder.append(
            [DCBEvent(type=EVENT_TYPE, data=data, tags=list(tags))],
            DCBAppendCondition(fail_if_events_match=_query(tags), after=after),
        )

    def close(self) -> None:
        self.datastore.close()


def open_client(dsn: str, schema: str) -> _Client:
    return _Client(dsn, schema)


class EventsourcingDcbSide:
    name = "eventsourcing"

    def __init__(self, dsn: str, schema: str = "bench_dcb_eventsourcing") -> None:
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
        self._client = _Client(self.dsn, self.schema, create=True)
        recorder = self.client.recorder
        batch: list[DCBEvent] = []
        for i, course, student in prefill_tags(events):
            batch.append(
                DCBEvent(type=EVENT_TYPE, data=event_data(course, student), tags=[course, student])
            )
            if len(batch) == PREFILL_CHUNK or i == events - 1:
                recorder.append(batch)  # unconditional: one statement per chunk
                batch = []
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
