"""esframework's side, through its public API: `Repository` over `PostgresEventStore`.

Everything that depends on esframework's names or table layout is in this module, so it is
the only one to adapt when they change: the store's construction (`open_store`), the append
statement held open (`hold_append_open`, from `esframework.postgres._sql`) and the rows
written straight into the events table for the memory scenario (`write_long_stream`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from _common import (
    LOAD_WRITE_CHUNK,
    amount_for,
    drop_schema,
    note_for,
    recreate_schema,
    timed_repeat,
)
from psycopg import sql

from esframework import (
    EventStore,
    Repository,
    Serializer,
    SnapshotPolicy,
    aggregate,
    aggregate_version,
    applies,
    emit,
    event,
    new,
)

__all__ = ["MEMORY_READS", "EsframeworkSide", "measure_memory", "open_store", "write_long_stream"]

STREAM_TYPE = "BenchAccount"


@event(name="BenchDeposited")
class Deposited:
    amount: Decimal
    note: str


@aggregate(stream_type=STREAM_TYPE)
class BenchAccount:
    balance: Decimal = Decimal(0)

    @applies(Deposited)
    def _on_deposited(self, e: Deposited) -> None:
        self.balance += e.amount


def _snapshotting_account(every: int) -> type[Any]:
    """BenchAccount with automatic snapshots every `every` events (a policy is per class)."""

    @aggregate(stream_type=f"{STREAM_TYPE}Snapshotting", snapshots=SnapshotPolicy(every=every))
    class BenchSnapshottingAccount:
        balance: Decimal = Decimal(0)

        @applies(Deposited)
        def _on_deposited(self, e: Deposited) -> None:
            self.balance += e.amount

    return BenchSnapshottingAccount


def open_store(dsn: str, schema: str) -> EventStore:
    """Open esframework's PostgreSQL store in `schema`, creating its tables."""
    from esframework.postgres import PostgresEventStore

    store = PostgresEventStore(dsn, schema=schema)
    store.migrate()
    opened: EventStore = store
    return opened


def _deposit(account: Any, i: int) -> None:
    emit(account, Deposited(amount=amount_for(i), note=note_for(i)))


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class EsframeworkSide:
    name = "esframework"

    def __init__(self, dsn: str, schema: str = "bench_esframework") -> None:
        self.dsn = self._dsn = dsn
        self.schema = self._schema = schema
        self._store: EventStore | None = None
        self._serializer = Serializer()

    @property
    def store(self) -> EventStore:
        assert self._store is not None, "setup() first"
        return self._store

    @property
    def repo(self) -> Repository[BenchAccount]:
        return Repository(BenchAccount, store=self.store, serializer=self._serializer)

    def setup(self) -> None:
        recreate_schema(self._dsn, self._schema)
        self._store = open_store(self._dsn, self._schema)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        drop_schema(self._dsn, self._schema)

    def _write_stream(self, stream_id: str, events: int) -> None:
        repo = self.repo
        account = new(BenchAccount, stream_id)
        for i in range(1, events + 1):
            _deposit(account, i)
            if i % LOAD_WRITE_CHUNK == 0 or i == events:
                repo.save(account)

    # -- scenarios --------------------------------------------------------------------------

    def create(self, n: int) -> float:
        repo = self.repo
        start = time.perf_counter()
        for i in range(n):
            account = new(BenchAccount, _new_id("create"))
            _deposit(account, i)
            repo.save(account)
        return n / (time.perf_counter() - start)

    def append(self, n: int, snapshot_every: int) -> float:
        cls = _snapshotting_account(snapshot_every) if snapshot_every else BenchAccount
        repo: Repository[Any] = Repository(cls, store=self.store, serializer=self._serializer)
        stream_id = _new_id("append")
        account = new(cls, stream_id)
        _deposit(account, 0)
        repo.save(account)
        start = time.perf_counter()
        for i in range(n):
            loaded = repo.load(stream_id)
            _deposit(loaded, i)
            repo.save(loaded)
        return n / (time.perf_counter() - start)

    def batch(self, saves: int, size: int) -> float:
        repo = self.repo
        start = time.perf_counter()
        for s in range(saves):
            account = new(BenchAccount, _new_id("batch"))
            for i in range(size):
                _deposit(account, s * size + i)
            repo.save(account)
        return saves * size / (time.perf_counter() - start)

    def load(self, events: int, seconds: float) -> tuple[float, float]:
        repo = self.repo
        stream_id = _new_id("load")
        self._write_stream(stream_id, events)

        def load() -> None:
            account = repo.load(stream_id)
            assert aggregate_version(account) == events

        full = timed_repeat(load, seconds)
        repo.take_snapshot(repo.load(stream_id))
        return full, timed_repeat(load, seconds)

    def prepare_catchup(self, n: int) -> None:
        for first in range(0, n, LOAD_WRITE_CHUNK):
            self._write_stream(_new_id("catchup"), min(LOAD_WRITE_CHUNK, n - first))

    def catchup(self, n: int) -> float:
        decode = self._serializer.decode
        seen = 0
        start = time.perf_counter()
        for record in self.store.iter_all(page_size=1_000):
            decode(record)
            seen += 1
            if seen == n:
                break
        elapsed = time.perf_counter() - start
        assert seen == n, f"read {seen} of {n} events"
        return n / elapsed

    def open_writer(self) -> _EsframeworkWriter:
        return _EsframeworkWriter(self.repo)

    @contextmanager
    def hold_append_open(self) -> Iterator[None]:
        # The store has no public "append inside my transaction": run the store's own append
        # statement (advisory lock, version check, insert) and keep its transaction open.
        from esframework.postgres._sql import Statements, append_params

        statements = Statements(self._schema)
        record = self._serializer.encode(
            Deposited(amount=amount_for(0), note=note_for(0)), event_id=uuid.uuid4()
        )
        params = append_params(_new_id("held"), STREAM_TYPE, [record], 0)
        with psycopg.connect(self._dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(statements.append(1), params)
            yield


def _insert_events_sql(schema: str, count: int) -> sql.Composed:
    """Insert `count` events, versions 1..count, into one stream (the parameter).

    Columns as in esframework's migration 1; payloads as `Serializer` writes them.
    """
    return sql.SQL(
        "INSERT INTO {}.events (id, stream_id, stream_type, event_type, schema_version,"
        " event_data, metadata, version, created_at)"
        " SELECT gen_random_uuid(), %s, {}, 'BenchDeposited', 1,"
        " jsonb_build_object('amount', trim_scale((1 + g %% 10000) / 100.0)::text,"
        " 'note', 'deposit ' || g), '{{}}'::jsonb, g, now()"
        " FROM generate_series(1, {}) AS g"
    ).format(sql.Identifier(schema), sql.Literal(STREAM_TYPE), sql.Literal(count))


class _EsframeworkWriter:
    def __init__(self, repo: Repository[BenchAccount]) -> None:
        self._repo = repo
        self._account = new(BenchAccount, _new_id("writer"))
        self._i = 0
        self.save()

    def save(self) -> None:
        self._i += 1
        _deposit(self._account, self._i)
        self._repo.save(self._account)

    def close(self) -> None:
        pass


# -- memory scenario (esframework only) -----------------------------------------------------


def write_long_stream(dsn: str, schema: str, stream_id: str, events: int) -> None:
    """Write one `events`-long stream straight into the store's table, in its row format.

    One INSERT ... SELECT generate_series: far faster than a million appends, and the rows
    are exactly what the store would have written (valid JSON payloads, versions 1..n).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_insert_events_sql(schema, events), (stream_id,))
        conn.execute(sql.SQL("ANALYZE {}.events").format(sql.Identifier(schema)))


MEMORY_READS = ("load", "history", "read_all")


def measure_memory(dsn: str, schema: str, stream_id: str, events: int, read: str) -> float:
    """Peak RSS growth (MB) of one way of reading the long stream.

    `read` is `load` (`Repository.load`), `history` (`Repository.history`, decoded events) or
    `read_all` (`EventStore.iter_all` and `Serializer.decode`). Run each in a fresh process
    (see `_memory.py`), so that neither earlier work nor memory it freed hides the peak.
    """
    from _memory import PeakRSS

    store = open_store(dsn, schema)
    serializer = Serializer()
    repo = Repository(BenchAccount, store=store, serializer=serializer)
    try:
        store.head()  # connect and warm up before the baseline is taken
        with PeakRSS() as peak:
            if read == "load":
                seen = aggregate_version(repo.load(stream_id))
            elif read == "history":
                seen = sum(1 for _ in repo.history(stream_id))
            elif read == "read_all":
                seen = 0
                for record in store.iter_all():
                    serializer.decode(record)
                    seen += 1
            else:
                msg = f"unknown read {read!r}; expected one of {MEMORY_READS}"
                raise ValueError(msg)
        assert seen == events, f"read {seen} of {events} events"
    finally:
        store.close()
    return peak.growth_mb
