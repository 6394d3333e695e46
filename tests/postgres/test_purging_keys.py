"""`purge_forgotten_keys` on PostgreSQL: a forgotten key leaves the key table's pages,
unless a transaction that may still see it is open; then it says so, and a later run works."""

from __future__ import annotations

import threading

import psycopg
import pytest

from esframework.errors import StoreError
from esframework.postgres import PostgresEventStore
from tests.subscriptions.test_personal_data import purge_until_done


def _key_table_bytes(store: PostgresEventStore) -> bytes:
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        (path,) = conn.execute(
            "SELECT pg_relation_filepath(%s::regclass)", (f'"{store.schema}".personal_data_keys',)
        ).fetchone()
        return bytes(conn.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone()[0])


def test_an_open_transaction_keeps_the_key_until_it_ends(
    postgres_store: PostgresEventStore,
) -> None:
    store = postgres_store
    key = store.personal_data_keys(["c-1"], create=True)["c-1"]
    live = store.personal_data_keys(["c-2"], create=True)["c-2"]
    assert key is not None
    assert live is not None
    with psycopg.connect(store.conninfo) as reader:
        # A snapshot taken before forgetting may still read the key's row version.
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT 1").fetchone()  # a snapshot, and no lock on the key table
        store.delete_personal_data_key("c-1")
        with pytest.raises(StoreError, match="still visible to an open transaction"):
            store.purge_forgotten_keys()
        assert key in _key_table_bytes(store)
        reader.rollback()
    purge_until_done(store)  # other tests' transactions, if any, end soon too
    stored = _key_table_bytes(store)
    assert key not in stored
    assert live in stored  # the search does find the keys that are there
    assert store.personal_data_keys(["c-1", "c-2"]) == {"c-1": None, "c-2": live}


def test_a_transaction_holding_the_key_table_fails_the_purge_in_time(
    postgres_store: PostgresEventStore,
) -> None:
    """The purge waits for the table's lock no longer than the store's lock_timeout: while
    it waits, every read of keys queues behind it, so waiting forever would stall the app."""
    store = PostgresEventStore(
        postgres_store.conninfo, schema=postgres_store.schema, lock_timeout=0.3
    )
    store.personal_data_keys(["c-1"], create=True)
    store.delete_personal_data_key("c-1")
    failures: list[Exception] = []

    def purge() -> None:
        try:
            store.purge_forgotten_keys()
        except StoreError as error:
            failures.append(error)

    with store, psycopg.connect(store.conninfo) as holder:
        holder.execute(f'SELECT count(*) FROM "{store.schema}".personal_data_keys').fetchone()
        purging = threading.Thread(target=purge)
        purging.start()
        purging.join(timeout=60)
        assert not purging.is_alive(), "the purge waited for the lock past its lock_timeout"
        [failure] = failures
        assert "locked by an open transaction" in str(failure)
        assert store.personal_data_keys(["c-1"]) == {"c-1": None}  # nothing was lost
        holder.rollback()
        purge_until_done(store)
