"""esframework's side, through its public API: `Repository` over `PostgresEventStore`.

Everything that depends on esframework's names or table layout is in this module, so it is
the only one to adapt when they change: the store's construction (`open_store`), the unit of
work (`store.transaction()`, in `hold_append_open` and the writers) and the rows written
straight into the events table for the memory scenario (`write_long_stream`).
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
    check_session_settings,
    drop_schema,
    note_for,
    recreate_schema,
    session_settings,
    timed_repeat,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from esframework import (
    Repository,
    Serializer,
    SnapshotPolicy,
    aggregate,
    aggregate_id,
    aggregate_version,
    applies,
    emit,
    event,
    new,
)
from esframework.postgres import PostgresEventStore

__all__ = [
    "MEMORY_READS",
    "EsframeworkSide",
    "appends_join_transactions",
    "measure_memory",
    "open_store",
    "open_writer",
    "write_long_stream",
]

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


def open_store(
    dsn: str, schema: str, *, migrate: bool = True, max_size: int = 10
) -> PostgresEventStore:
    """Open esframework's PostgreSQL store in `schema` (creating its tables with `migrate`).

    Session settings in the DSN's `options` (the simulated commit flush) must reach every
    connection the store opens: its pool's, and those it opens outside the pool (leases,
    listeners, and whatever else the store needs). The connection string is the way to say
    that once; a store that replaces the DSN's options with its own instead gets a pool of
    ours carrying them (the store folds a given pool's settings into the connection string it
    uses outside the pool). The settings are checked on a pooled connection either way.
    """
    store = PostgresEventStore(dsn, schema=schema, max_size=max_size)
    settings = session_settings(dsn)
    if settings and not _pool_has(store, settings):
        store.close()
        store = _StoreOwningItsPool(dsn, schema, max_size)
    if settings:
        with store.connection() as conn:
            check_session_settings(conn, dsn, f"esframework store {schema}")
        outside = session_settings(store.conninfo)
        assert all(outside.get(k) == v for k, v in settings.items()), store.conninfo
    if migrate:
        store.migrate()
    return store


def _pool_has(store: PostgresEventStore, settings: dict[str, str]) -> bool:
    with store.connection() as conn:
        for name, wanted in settings.items():
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            if row is None or row[0] != wanted:
                return False
    return True


class _StoreOwningItsPool(PostgresEventStore):
    """The store on a pool whose connections carry the DSN's options next to the settings
    the store gives its own pool (autocommit, `lock_timeout`), for as long as the store
    replaces a DSN's options with its own. Closing the store closes the pool."""

    def __init__(self, dsn: str, schema: str, max_size: int) -> None:
        options = f"-c lock_timeout=10000 {conninfo_to_dict(dsn).get('options', '')}"
        self._bench_pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "options": options, "application_name": "bench"},
            open=True,
        )
        super().__init__(pool=self._bench_pool, schema=schema)

    def close(self) -> None:
        super().close()
        self._bench_pool.close()


def appends_join_transactions(store: PostgresEventStore) -> bool:
    """Whether a save inside `store.transaction()` joins that transaction (the unit of work):
    the event must not be visible to another connection before the block ends."""
    repo = Repository(BenchAccount, store=store)
    account = new(BenchAccount, _new_id("probe"))
    _deposit(account, 0)
    stream_id = aggregate_id(account)
    with store.transaction():
        repo.save(account)
        with psycopg.connect(store.conninfo, autocommit=True) as other:
            visible = other.execute(
                sql.SQL("SELECT count(*) FROM {}.events WHERE stream_id = %s").format(
                    sql.Identifier(store.schema)
                ),
                (stream_id,),
            ).fetchone()
    return visible is not None and visible[0] == 0


def _deposit(account: Any, i: int) -> None:
    emit(account, Deposited(amount=amount_for(i), note=note_for(i)))


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class EsframeworkSide:
    name = "esframework"

    def __init__(self, dsn: str, schema: str = "bench_esframework") -> None:
        self.dsn = self._dsn = dsn
        self.schema = self._schema = schema
        self._store: PostgresEventStore | None = None
        self._serializer = Serializer()
        self.unit_of_work: bool | None = None  # whether appends join store.transaction()

    @property
    def store(self) -> PostgresEventStore:
        assert self._store is not None, "setup() first"
        return self._store

    @property
    def repo(self) -> Repository[BenchAccount]:
        return Repository(BenchAccount, store=self.store, serializer=self._serializer)

    def setup(self) -> None:
        recreate_schema(self._dsn, self._schema)
        self._store = open_store(self._dsn, self._schema)
        self.unit_of_work = appends_join_transactions(self._store)

    def close(self) -> None:
        """Close this side's connections (its schema stays)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def teardown(self) -> None:
        self.close()
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

    @contextmanager
    def hold_append_open(self) -> Iterator[None]:
        # A unit of work left open: the save joins the transaction, which stays open for as
        # long as the context does.
        if not self.unit_of_work:
            with self._hold_append_statement_open():
                yield
            return
        account = new(BenchAccount, _new_id("held"))
        _deposit(account, 0)
        with self.store.transaction():
            self.repo.save(account)
            yield

    @contextmanager
    def _hold_append_statement_open(self) -> Iterator[None]:
        # For a store whose saves do not join `store.transaction()` (before the unit of work
        # existed): run the store's own append statement in a transaction kept open.
        from esframework.postgres._sql import (
            Statements,
            append_params,
            dcb_locks,
        )

        statements = Statements(self._schema)
        record = self._serializer.encode(
            Deposited(amount=amount_for(0), note=note_for(0)), event_id=uuid.uuid4()
        )
        locks = dcb_locks(self._schema, [record], None)
        params = append_params(_new_id("held"), STREAM_TYPE, [record], 0, locks=locks)
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


def open_writer(dsn: str, schema: str, aggregates: int = 1) -> _EsframeworkWriter:
    """A writer with a store of its own; with several aggregates, one unit of work saves
    them all."""
    store = open_store(dsn, schema, migrate=False, max_size=3)
    return _EsframeworkWriter(store, aggregates)


class _EsframeworkWriter:
    def __init__(self, store: PostgresEventStore, aggregates: int) -> None:
        self._store = store
        self._repo = Repository(BenchAccount, store=store)
        self._accounts = [new(BenchAccount, _new_id("writer")) for _ in range(aggregates)]
        self._i = 0
        self.save()

    def save(self) -> None:
        self._i += 1
        if len(self._accounts) == 1:
            _deposit(self._accounts[0], self._i)
            self._repo.save(self._accounts[0])
            return
        with self._store.transaction():
            for account in self._accounts:
                _deposit(account, self._i)
                self._repo.save(account)

    def close(self) -> None:
        self._store.close()


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
