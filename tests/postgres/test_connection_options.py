"""Connection settings reach every connection the store uses, whichever way it connects.

The store opens connections three ways: its own pool (from a connection string), a pool the
application gives it, and, in both cases, the lease and listener connections it opens outside
the pool. The connection string's `options` and the store's `lock_timeout` must hold on each.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg_pool import ConnectionPool

from esframework import ExpectedVersion, NewEvent
from esframework.errors import StoreError
from esframework.postgres import PostgresEventStore
from esframework.postgres._sql import stream_lock_key

USER_OPTIONS = "-c search_path=reporting,public -c statement_timeout=4321"


def with_options(dsn: str, options: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, options=options)


def an_event() -> NewEvent:
    return NewEvent(event_id=uuid.uuid4(), event_type="Noted", schema_version=1, data="{}")


@contextmanager
def opened(
    dsn: str, schema: str, how: str, *, size: int = 2, **settings: Any
) -> Iterator[PostgresEventStore]:
    """A migrated store that connects `how`: "conninfo" (its own pool) or "pool" (ours)."""
    if how == "conninfo":
        with PostgresEventStore(dsn, schema=schema, max_size=size, **settings) as store:
            store.migrate()
            yield store
        return
    with (
        ConnectionPool(dsn, min_size=1, max_size=size, kwargs={"autocommit": True}) as pool,
        PostgresEventStore(pool=pool, schema=schema, **settings) as store,
    ):
        store.migrate()
        yield store


def show(connection: psycopg.Connection[Any], setting: str) -> str:
    row = connection.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def settings_of(store: PostgresEventStore) -> dict[str, dict[str, str]]:
    """What the store's pooled, lease and listener connections report for each setting."""
    names = ("lock_timeout", "search_path", "statement_timeout")
    seen: dict[str, dict[str, str]] = {}
    with store.connection() as conn:
        seen["pool"] = {name: show(conn, name) for name in names}
    lease = store.lease("options-test")
    try:
        assert lease.acquire()
        assert lease._connection is not None
        seen["lease"] = {name: show(lease._connection, name) for name in names}
    finally:
        lease.release()
    with store.listener() as listener:
        assert listener._connection is not None
        seen["listener"] = {name: show(listener._connection, name) for name in names}
    return seen


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_the_connection_strings_options_are_kept_beside_the_lock_timeout(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    """`-c search_path=...` and `-c statement_timeout=...` survive the store's lock_timeout."""
    dsn = with_options(postgres_dsn, USER_OPTIONS)
    with opened(dsn, postgres_schema, how, lock_timeout=2.5) as store:
        store.append("s-1", "Note", [an_event()], expected_version=ExpectedVersion.NO_STREAM)
        wanted = {
            "lock_timeout": "2500ms",
            "search_path": "reporting,public",
            "statement_timeout": "4321ms",
        }
        assert settings_of(store) == {"pool": wanted, "lease": wanted, "listener": wanted}


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_the_default_lock_timeout_applies_where_the_connection_sets_none(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    with opened(postgres_dsn, postgres_schema, how) as store:
        seen = settings_of(store)
    assert {kind: s["lock_timeout"] for kind, s in seen.items()} == dict.fromkeys(
        ("pool", "lease", "listener"), "10s"
    )


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_a_lock_timeout_in_the_connection_string_is_kept_unless_the_store_is_given_one(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    dsn = with_options(postgres_dsn, "-c lock_timeout=1234")
    with opened(dsn, postgres_schema, how) as store:
        kept = settings_of(store)
    with opened(dsn, postgres_schema, how, lock_timeout=3) as store:
        overridden = settings_of(store)
    assert {s["lock_timeout"] for s in kept.values()} == {"1234ms"}
    assert {s["lock_timeout"] for s in overridden.values()} == {"3s"}


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_an_append_stuck_behind_an_open_append_fails_after_lock_timeout(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    """The behaviour lock_timeout promises, on both ways of connecting."""
    with opened(postgres_dsn, postgres_schema, how, lock_timeout=0.2) as store:
        with psycopg.connect(postgres_dsn) as blocker:  # holding the stream's lock
            blocker.execute(
                "SELECT pg_advisory_xact_lock(%s)", (stream_lock_key(postgres_schema, "s-1"),)
            )
            with pytest.raises(StoreError, match="lock_timeout"):
                store.append("s-1", "Note", [an_event()], expected_version=ExpectedVersion.ANY)
            blocker.rollback()
        assert list(store.read_stream("s-1")) == []


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_statement_timeout_from_the_connection_string_cancels_a_long_query(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    dsn = with_options(postgres_dsn, "-c statement_timeout=1000")
    with (
        opened(dsn, postgres_schema, how) as store,
        store.connection() as conn,
        pytest.raises(psycopg.errors.QueryCanceled),
    ):
        conn.execute("SELECT pg_sleep(30)")


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_search_path_from_the_connection_string_reaches_read_models_not_the_store(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    """Read-model SQL sees the user's search_path; the store's own SQL names its schema."""
    reporting = f"{postgres_schema}_reporting"
    dsn = with_options(postgres_dsn, f"-c search_path={reporting}")
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{reporting}"')
        admin.execute(f'CREATE TABLE "{reporting}".totals (n int)')
    try:
        with opened(dsn, postgres_schema, how) as store:
            store.append("s-1", "Note", [an_event()], expected_version=ExpectedVersion.NO_STREAM)
            with store.transaction() as conn:
                conn.execute("INSERT INTO totals VALUES (1)")  # unqualified: the user's schema
            assert [e.version for e in store.read_stream("s-1")] == [1]
        with psycopg.connect(postgres_dsn) as admin:
            assert admin.execute(f'SELECT n FROM "{reporting}".totals').fetchall() == [(1,)]
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{reporting}" CASCADE')


def round_trips(trace: Path) -> int:
    """The requests the client sent, each answered before the next: one Sync or Query each."""
    messages = [line.split("\t") for line in trace.read_text().splitlines()]
    return sum(1 for m in messages if m[0] == "F" and m[2] in {"Sync", "Query"})


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_an_append_stays_one_round_trip(postgres_dsn: str, postgres_schema: str, how: str) -> None:
    """Setting lock_timeout costs a round trip per new connection, never one per append."""
    with opened(postgres_dsn, postgres_schema, how, size=1, lock_timeout=5) as store:
        # Warm up past psycopg's prepare_threshold (5): preparing costs one round trip, once.
        for _ in range(6):
            store.append("warm", "Note", [an_event()], expected_version=ExpectedVersion.ANY)
        fd, name = tempfile.mkstemp(prefix="esframework-trace-")
        try:
            with store._pool.connection() as conn:  # the pool's one connection
                conn.pgconn.trace(fd)
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            for n in range(5):
                store.append(f"s-{n}", "Note", [an_event()], expected_version=ExpectedVersion.ANY)
            with store._pool.connection() as conn:
                conn.pgconn.untrace()
            appended = round_trips(Path(name))
        finally:
            os.close(fd)
            Path(name).unlink()
    assert appended == 5


def test_the_async_store_keeps_the_options_and_sets_lock_timeout_on_every_connection(
    postgres_dsn: str, postgres_schema: str, loop_thread: Any
) -> None:
    from esframework.postgres import AsyncPostgresEventStore

    async def seen() -> list[tuple[str, str]]:
        dsn = with_options(postgres_dsn, USER_OPTIONS)
        async with AsyncPostgresEventStore(dsn, schema=postgres_schema, lock_timeout=2.5) as store:
            await store.migrate()
            rows = []
            async with store.connection() as conn:
                cursor = await conn.execute(QUERY)
                rows += await cursor.fetchall()
            lease = store.lease("options-test")
            assert await lease.acquire()
            assert lease._connection is not None
            cursor = await lease._connection.execute(QUERY)
            rows += await cursor.fetchall()
            await lease.release()
            async with store.listener() as listener:
                assert listener._connection is not None
                cursor = await listener._connection.execute(QUERY)
                rows += await cursor.fetchall()
            return rows

    wanted = ("2500ms", "reporting,public", "4321ms")
    assert loop_thread.run(seen()) == [wanted] * 3


QUERY = (
    "SELECT current_setting('lock_timeout'), current_setting('search_path'), "
    "current_setting('statement_timeout')"
)


@pytest.mark.parametrize("store_class", ["sync", "async"])
def test_a_connection_string_that_does_not_parse_is_refused_without_echoing_it(
    store_class: str,
) -> None:
    """A bad DSN is InvalidConnectionStringError with libpq's reason, and the string (which
    may hold a password) is not repeated in the message."""
    from esframework.errors import InvalidConnectionStringError
    from esframework.postgres import AsyncPostgresEventStore

    cls: Any = PostgresEventStore if store_class == "sync" else AsyncPostgresEventStore
    for dsn in ("hunter2notadsn", "password=hunter2 host"):
        with pytest.raises(InvalidConnectionStringError) as caught:
            cls(dsn)
        assert isinstance(caught.value, StoreError)
        assert isinstance(caught.value, ValueError)
        assert "not a PostgreSQL connection string or URL" in str(caught.value)
        assert "hunter2" not in str(caught.value)


def test_a_server_that_cannot_be_reached_is_named_with_its_reason(loop_thread: Any) -> None:
    """When no pooled connection comes, the error says why a connection fails (libpq's
    reason), not only that the pool timed out."""
    from esframework.errors import StoreUnavailableError
    from esframework.postgres import AsyncPostgresEventStore

    refused = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    with (
        PostgresEventStore(refused, pool_timeout=0.5) as store,
        pytest.raises(StoreUnavailableError) as caught,
    ):
        store.stream_version("s-1")
    assert "the server cannot be reached" in str(caught.value)
    assert "Connection refused" in str(caught.value)

    async def read() -> None:
        async with AsyncPostgresEventStore(refused, pool_timeout=0.5) as store:
            await store.stream_version("s-1")

    with pytest.raises(StoreUnavailableError, match="the server cannot be reached"):
        loop_thread.run(read())


def test_an_exhausted_pool_of_a_reachable_server_says_so(
    postgres_dsn: str, postgres_schema: str
) -> None:
    from esframework.errors import StoreUnavailableError

    with PostgresEventStore(
        postgres_dsn, schema=postgres_schema, max_size=1, pool_timeout=0.5
    ) as store:
        store.migrate()
        with store.connection(), pytest.raises(StoreUnavailableError) as caught:
            store.stream_version("s-1")  # the pool's one connection is lent out
    assert "the pool is exhausted" in str(caught.value)
    assert "cannot be reached" not in str(caught.value)
