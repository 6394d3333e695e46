"""Lost connections, retried writes and an exhausted pool, against a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from esframework import Repository, Serializer, pending_events
from esframework.errors import StoreUnavailableError
from esframework.postgres import PostgresEventStore
from tests.domain import Wallet
from tests.fixtures.proxy import FaultyProxy


@pytest.fixture
def proxy(postgres_dsn: str) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(postgres_dsn)
    yield faulty
    faulty.close()


def proxied_store(
    proxy: FaultyProxy, schema: str, *, reconnect_attempts: int
) -> PostgresEventStore:
    store = PostgresEventStore(
        proxy.dsn,
        schema=schema,
        min_size=1,
        max_size=1,
        pool_timeout=2,
        reconnect_attempts=reconnect_attempts,
    )
    store.head()  # a warm connection: the next answer the proxy cuts is the append's
    return store


def test_append_whose_answer_was_lost_is_retried_without_duplicates(
    postgres_store: PostgresEventStore, proxy: FaultyProxy
) -> None:
    """The append commits but the client never hears; the store's retry reports it stored."""
    with proxied_store(proxy, postgres_store.schema, reconnect_attempts=2) as store:
        wallet = Wallet.open("w", "Ada")
        wallet.add(Decimal(5))
        proxy.cut_next_response()
        result = Repository(Wallet, store=store).save(wallet)
    assert result is not None
    stored = list(postgres_store.read_stream("w"))
    assert [e.version for e in stored] == [1, 2]
    assert result.version == 2


def test_caller_retry_after_a_lost_commit_is_not_a_false_conflict(
    postgres_store: PostgresEventStore, proxy: FaultyProxy
) -> None:
    """With no automatic retry the save fails clearly; saving again succeeds, written once."""
    with proxied_store(proxy, postgres_store.schema, reconnect_attempts=0) as store:
        wallets = Repository(Wallet, store=store)
        wallet = Wallet.open("w", "Ada")
        proxy.cut_next_response()
        with pytest.raises(StoreUnavailableError, match="connection was lost"):
            wallets.save(wallet)
        assert len(pending_events(wallet)) == 1  # the caller cannot know: it still holds them
        result = wallets.save(wallet)  # the retry: the same event ids
    assert result is not None
    assert postgres_store.stream_version("w") == 1
    assert result.version == 1
    assert len(postgres_store.read_all()) == 1


def test_terminated_backend_is_replaced_transparently(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """pg_terminate_backend on the store's connection: the next append reconnects and lands."""
    with PostgresEventStore(
        postgres_dsn, schema=postgres_store.schema, min_size=1, max_size=1
    ) as store:
        with store.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(postgres_dsn, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        Repository(Wallet, store=store).save(Wallet.open("w", "Ada"))
        assert store.stream_version("w") == 1


def test_terminated_during_an_open_append_writes_nothing(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """A transaction killed before its commit leaves nothing; retrying the append writes it."""
    from esframework.postgres._sql import append_params, dcb_locks

    wallet = Wallet.open("w", "Ada")
    records = [Serializer().encode(p.event, event_id=p.event_id) for p in pending_events(wallet)]
    locks = dcb_locks(postgres_store.schema, records, None)
    params = append_params("w", "TestWallet", records, 0, locks=locks)
    conn = psycopg.connect(postgres_dsn)
    conn.execute(
        postgres_store._statements.append(len(records)), params
    )  # inside an open transaction
    with psycopg.connect(postgres_dsn, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        conn.commit()
    conn.close()
    assert postgres_store.stream_version("w") == 0
    postgres_store.append("w", "TestWallet", records, expected_version=0)
    assert postgres_store.stream_version("w") == 1


def test_store_recovers_when_the_server_comes_back(
    postgres_store: PostgresEventStore, proxy: FaultyProxy
) -> None:
    """While the server is unreachable operations fail clearly; afterwards they work again."""
    with proxied_store(proxy, postgres_store.schema, reconnect_attempts=1) as store:
        wallets = Repository(Wallet, store=store)
        proxy.go_down()
        wallet = Wallet.open("w", "Ada")
        with pytest.raises(StoreUnavailableError):
            wallets.save(wallet)
        assert postgres_store.stream_version("w") == 0  # nothing partial
        proxy.come_back()
        deadline = time.monotonic() + 10
        while True:
            try:
                wallets.save(wallet)
                break
            except StoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    assert postgres_store.stream_version("w") == 1


def test_exhausted_pool_times_out_clearly(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """With every connection lent out, an operation fails after pool_timeout, not hangs."""
    with PostgresEventStore(
        postgres_dsn, schema=postgres_store.schema, max_size=1, pool_timeout=0.5
    ) as store:
        with store.connection():
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="pool is exhausted"):
                store.head()
            assert time.monotonic() - started < 5
        assert store.head() == 0
