"""The baseline: plain psycopg 3 doing the same work, with no framework in between.

The same events table as esframework's, and a snapshots table. Payloads are encoded and
decoded the way a careful hand-written application would: cattrs (orjson preset, decimals as
strings) and orjson.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson
import psycopg
from _common import (
    LOAD_WRITE_CHUNK,
    amount_for,
    check_session_settings,
    drop_schema,
    note_for,
    recreate_schema,
    timed_repeat,
)
from cattrs.preconf.orjson import make_converter
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_loads

__all__ = ["RawSide", "open_writer"]

STREAM_TYPE = "BenchAccount"
EVENT_TYPE = "BenchDeposited"
PAGE = 1_000

# esframework's events table and its indexes (its migration 1), so that raw pays for the same
# rows and indexes; `{}` stands for the schema.
_DDL: Final = (
    """
    CREATE TABLE {}.events (
        id uuid PRIMARY KEY,
        stream_id varchar(255) NOT NULL,
        stream_type varchar(255) NOT NULL,
        event_type varchar(255) NOT NULL,
        event_data jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        version bigint NOT NULL CHECK (version >= 1),
        global_position bigint GENERATED ALWAYS AS IDENTITY,
        created_at timestamptz NOT NULL DEFAULT now(),
        schema_version integer NOT NULL DEFAULT 1,
        UNIQUE (stream_id, version)
    )
    """,
    "CREATE UNIQUE INDEX ON {}.events (global_position)",
    "CREATE INDEX ON {}.events (event_type)",
    "CREATE INDEX ON {}.events (created_at)",
    """
    CREATE TABLE {}.snapshots (
        stream_id varchar(255) PRIMARY KEY,
        version bigint NOT NULL,
        state jsonb NOT NULL
    )
    """,
)


@attrs.frozen(kw_only=True)
class Deposited:
    amount: Decimal
    note: str


@attrs.define
class Account:
    balance: Decimal = Decimal(0)
    version: int = 0


_converter = make_converter()
_converter.register_unstructure_hook(Decimal, str)
_converter.register_structure_hook(Decimal, lambda v, _: Decimal(v))
_EVENT_CLASSES: dict[str, type[Any]] = {EVENT_TYPE: Deposited}


def _payload(i: int) -> Jsonb:
    event = Deposited(amount=amount_for(i), note=note_for(i))
    return Jsonb(_converter.unstructure(event), dumps=orjson.dumps)


def _decode(event_type: str, data: Any) -> Any:
    return _converter.structure(data, _EVENT_CLASSES[event_type])


class RawSide:
    name = "raw"

    def __init__(self, dsn: str, schema: str = "bench_raw") -> None:
        self.dsn = self._dsn = dsn
        self.schema = self._schema = schema
        self._conn: psycopg.Connection[Any] | None = None
        ident = sql.Identifier(schema)
        self.insert_sql = sql.SQL(
            "INSERT INTO {}.events (stream_id, stream_type, version, event_type, id, event_data)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(ident)
        self._select_stream = sql.SQL(
            "SELECT version, event_type, event_data FROM {}.events"
            " WHERE stream_id = %s AND version > %s ORDER BY version"
        ).format(ident)
        self._select_page = sql.SQL(
            "SELECT global_position, stream_id, version, event_type, event_data FROM {}.events"
            " WHERE global_position > %s ORDER BY global_position LIMIT %s"
        ).format(ident)
        self._upsert_snapshot = sql.SQL(
            "INSERT INTO {}.snapshots (stream_id, version, state) VALUES (%s, %s, %s)"
            " ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version,"
            " state = EXCLUDED.state"
        ).format(ident)
        self._select_snapshot = sql.SQL(
            "SELECT version, state FROM {}.snapshots WHERE stream_id = %s"
        ).format(ident)

    # -- plumbing ---------------------------------------------------------------------------

    def connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._dsn, autocommit=True)
        set_json_loads(orjson.loads, conn)
        return conn

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "setup() first"
        return self._conn

    def setup(self) -> None:
        recreate_schema(self._dsn, self._schema)
        self._conn = self.connect()
        ident = sql.Identifier(self._schema)
        for statement in _DDL:
            self.conn.execute(sql.SQL(statement).format(ident))

    def close(self) -> None:
        """Close this side's connections (its schema stays)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def teardown(self) -> None:
        self.close()
        drop_schema(self._dsn, self._schema)

    def row(self, stream_id: str, version: int, i: int) -> tuple[Any, ...]:
        return (stream_id, STREAM_TYPE, version, EVENT_TYPE, uuid.uuid4(), _payload(i))

    def _write_stream(self, stream_id: str, events: int) -> None:
        for first in range(1, events + 1, LOAD_WRITE_CHUNK):
            last = min(first + LOAD_WRITE_CHUNK - 1, events)
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(
                    self.insert_sql, [self.row(stream_id, v, v) for v in range(first, last + 1)]
                )

    def _replay(self, stream_id: str, state: Account) -> Account:
        rows = self.conn.execute(self._select_stream, (stream_id, state.version)).fetchall()
        for version, event_type, data in rows:
            event = _decode(event_type, data)
            state.balance += event.amount
            state.version = version
        return state

    # -- scenarios --------------------------------------------------------------------------

    def create(self, n: int) -> float:
        conn = self.conn
        start = time.perf_counter()
        for i in range(n):
            conn.execute(self.insert_sql, self.row(f"create-{uuid.uuid4()}", 1, i))
        return n / (time.perf_counter() - start)

    def append(self, n: int, snapshot_every: int) -> float:
        del snapshot_every  # raw inserts without loading: the floor of a save's cost
        conn = self.conn
        stream_id = f"append-{uuid.uuid4()}"
        start = time.perf_counter()
        for version in range(1, n + 1):
            conn.execute(self.insert_sql, self.row(stream_id, version, version))
        return n / (time.perf_counter() - start)

    def batch(self, saves: int, size: int) -> float:
        conn = self.conn
        start = time.perf_counter()
        for s in range(saves):
            stream_id = f"batch-{uuid.uuid4()}"
            rows = [self.row(stream_id, v, s * size + v) for v in range(1, size + 1)]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(self.insert_sql, rows)
        return saves * size / (time.perf_counter() - start)

    def load(self, events: int, seconds: float) -> tuple[float, float]:
        stream_id = f"load-{uuid.uuid4()}"
        self._write_stream(stream_id, events)

        def load_full() -> None:
            state = self._replay(stream_id, Account())
            assert state.version == events

        full = timed_repeat(load_full, seconds)
        state = self._replay(stream_id, Account())
        snapshot = Jsonb(_converter.unstructure(state), dumps=orjson.dumps)
        self.conn.execute(self._upsert_snapshot, (stream_id, state.version, snapshot))

        def load_from_snapshot() -> None:
            row = self.conn.execute(self._select_snapshot, (stream_id,)).fetchone()
            assert row is not None
            state = self._replay(stream_id, _converter.structure(row[1], Account))
            assert state.version == events

        return full, timed_repeat(load_from_snapshot, seconds)

    def prepare_catchup(self, n: int) -> None:
        for first in range(0, n, LOAD_WRITE_CHUNK):
            self._write_stream(f"catchup-{first}", min(LOAD_WRITE_CHUNK, n - first))

    def catchup(self, n: int) -> float:
        conn = self.conn
        seen = 0
        after = 0
        start = time.perf_counter()
        while seen < n:
            rows = conn.execute(self._select_page, (after, min(PAGE, n - seen))).fetchall()
            if not rows:
                break
            for _position, _stream_id, _version, event_type, data in rows:
                _decode(event_type, data)
            seen += len(rows)
            after = rows[-1][0]
        elapsed = time.perf_counter() - start
        assert seen == n, f"read {seen} of {n} events"
        return n / elapsed

    @contextmanager
    def hold_append_open(self) -> Iterator[None]:
        with self.connect() as conn, conn.transaction():
            conn.execute(self.insert_sql, self.row(f"held-{uuid.uuid4()}", 1, 0))
            yield


def open_writer(dsn: str, schema: str, aggregates: int = 1) -> _RawWriter:
    """A writer with a connection of its own; with several aggregates (streams), their
    inserts share one transaction."""
    return _RawWriter(RawSide(dsn, schema), aggregates)


class _RawWriter:
    def __init__(self, side: RawSide, aggregates: int) -> None:
        self._side = side
        self._conn = side.connect()
        check_session_settings(self._conn, side.dsn, f"raw writer {side.schema}")
        self._stream_ids = [f"writer-{uuid.uuid4()}" for _ in range(aggregates)]
        self._version = 0

    def save(self) -> None:
        self._version += 1
        v = self._version
        if len(self._stream_ids) == 1:
            self._conn.execute(self._side.insert_sql, self._side.row(self._stream_ids[0], v, v))
            return
        with self._conn.transaction():
            for stream_id in self._stream_ids:
                self._conn.execute(self._side.insert_sql, self._side.row(stream_id, v, v))

    def close(self) -> None:
        self._conn.close()
