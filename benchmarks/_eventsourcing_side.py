"""The peer: the `eventsourcing` library, through its Application and Aggregate API.

Configured the way its documentation describes: environment variables select the PostgreSQL
persistence module (`PERSISTENCE_MODULE=eventsourcing.postgres`) and its connection, and the
application creates its own tables (`CREATE_TABLE` defaults to yes) in the schema named by
`POSTGRES_SCHEMA`, which must exist beforehand. The environment is passed to the application's
constructor. The peer takes connection fields, not a connection string, so session settings
(the simulated commit flush) reach its connections through libpq's `PGOPTIONS`, set while a
writer's application opens its connection (`open_writer`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

from _common import (
    LOAD_WRITE_CHUNK,
    amount_for,
    check_session_settings,
    drop_schema,
    note_for,
    recreate_schema,
    timed_repeat,
)
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.projection import ApplicationSubscription
from psycopg.conninfo import conninfo_to_dict

__all__ = ["EventsourcingSide", "open_writer"]


class BenchAccount(Aggregate):
    # The peer's aggregates are created by an event; making that event carry the first
    # deposit keeps "one event per new aggregate", as on the other sides.
    @event("Opened")
    def __init__(self, amount: Decimal, note: str) -> None:
        self.balance = amount
        self.last_note = note

    @event("Deposited")
    def deposit(self, amount: Decimal, note: str) -> None:
        self.balance += amount
        self.last_note = note


class BenchApplication(Application[UUID]):
    name = "Bench"
    is_snapshotting_enabled = True


def _snapshotting_application(every: int) -> type[BenchApplication]:
    """The same application (same tables) with automatic snapshots every `every` events."""
    intervals: dict[type[Aggregate], int] = {BenchAccount: every}
    return type(
        "BenchSnapshottingApplication",
        (BenchApplication,),
        {"name": BenchApplication.name, "snapshotting_intervals": intervals},
    )


def postgres_env(dsn: str, schema: str) -> dict[str, str]:
    """The peer's configuration for a libpq DSN: it reads fields, not a connection string."""
    info = conninfo_to_dict(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        # Required even when the server trusts the client; empty means "no password".
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        # Room for the concurrent writers, the subscription's threads and the main thread.
        "POSTGRES_POOL_SIZE": "8",
    }


def _new_account(i: int) -> BenchAccount:
    return BenchAccount(amount_for(i), note_for(i))


class EventsourcingSide:
    name = "eventsourcing"

    def __init__(self, dsn: str, schema: str = "bench_eventsourcing") -> None:
        self.dsn = self._dsn = dsn
        self.schema = self._schema = schema
        self._env = postgres_env(dsn, schema)
        self._app: BenchApplication | None = None

    @property
    def app(self) -> BenchApplication:
        assert self._app is not None, "setup() first"
        return self._app

    def setup(self) -> None:
        recreate_schema(self._dsn, self._schema)
        self._app = BenchApplication(env=self._env)

    def close(self) -> None:
        """Close this side's connections (its schema stays)."""
        if self._app is not None:
            self._app.close()
            self._app = None

    def teardown(self) -> None:
        self.close()
        drop_schema(self._dsn, self._schema)

    def _write_stream(self, events: int) -> UUID:
        account = _new_account(0)
        for i in range(1, events):
            account.deposit(amount_for(i), note_for(i))
            if len(account.pending_events) == LOAD_WRITE_CHUNK:
                self.app.save(account)
        self.app.save(account)
        return account.id

    # -- scenarios --------------------------------------------------------------------------

    def create(self, n: int) -> float:
        app = self.app
        start = time.perf_counter()
        for i in range(n):
            app.save(_new_account(i))
        return n / (time.perf_counter() - start)

    def append(self, n: int, snapshot_every: int) -> float:
        app_class = _snapshotting_application(snapshot_every) if snapshot_every else None
        with (app_class or BenchApplication)(env=self._env) as app:
            account = _new_account(0)
            app.save(account)
            start = time.perf_counter()
            for i in range(n):
                loaded: BenchAccount = app.repository.get(account.id)
                loaded.deposit(amount_for(i), note_for(i))
                app.save(loaded)
            elapsed = time.perf_counter() - start
        return n / elapsed

    def batch(self, saves: int, size: int) -> float:
        app = self.app
        start = time.perf_counter()
        for s in range(saves):
            account = _new_account(s * size)
            for i in range(1, size):
                account.deposit(amount_for(s * size + i), note_for(i))
            app.save(account)
        return saves * size / (time.perf_counter() - start)

    def load(self, events: int, seconds: float) -> tuple[float, float]:
        app = self.app
        account_id = self._write_stream(events)

        def load() -> None:
            account: BenchAccount = app.repository.get(account_id)
            assert account.version == events

        full = timed_repeat(load, seconds)
        app.take_snapshot(account_id, version=events)
        return full, timed_repeat(load, seconds)

    def prepare_catchup(self, n: int) -> None:
        for first in range(0, n, LOAD_WRITE_CHUNK):
            self._write_stream(min(LOAD_WRITE_CHUNK, n - first))

    def catchup(self, n: int) -> float:
        # The documented way to read an application's events in order, as domain events.
        start = time.perf_counter()
        seen = 0
        with ApplicationSubscription(self.app, gt=0) as subscription:
            for domain_event, _tracking in subscription:
                assert domain_event.originator_version >= 1
                seen += 1
                if seen == n:
                    break
        return n / (time.perf_counter() - start)

    @contextmanager
    def hold_append_open(self) -> Iterator[None]:
        # The peer has no public "append inside my transaction"; do what its recorder's
        # insert_events() does (lock the table, notify, insert) but keep the transaction open.
        app = self.app
        account = _new_account(0)
        stored = [app.mapper.to_stored_event(e) for e in account.collect_events()]
        recorder: Any = app.recorder
        with (
            recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            recorder._insert_stored_events(cursor, stored)  # noqa: SLF001
            yield


def open_writer(dsn: str, schema: str, aggregates: int = 1) -> _PeerWriter:
    """A writer with an application (and a one-connection pool) of its own; with several
    aggregates, one `app.save(a, b)` saves them all in one transaction."""
    env = postgres_env(dsn, schema) | {"POSTGRES_POOL_SIZE": "1", "CREATE_TABLE": "no"}
    options = str(conninfo_to_dict(dsn).get("options", ""))
    before = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = options  # read by libpq when the pool connects, just below
    try:
        app = BenchApplication(env=env)
        writer = _PeerWriter(app, aggregates)
        recorder: Any = app.recorder
        with recorder.datastore.get_connection() as conn:
            check_session_settings(conn, dsn, f"eventsourcing writer {schema}")
    finally:
        if before is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = before
    return writer


class _PeerWriter:
    def __init__(self, app: BenchApplication, aggregates: int) -> None:
        self._app = app
        self._accounts = [_new_account(0) for _ in range(aggregates)]
        app.save(*self._accounts)
        self._i = 0

    def save(self) -> None:
        self._i += 1
        for account in self._accounts:
            account.deposit(amount_for(self._i), note_for(self._i))
        self._app.save(*self._accounts)

    def close(self) -> None:
        self._app.close()
