"""`purge_forgotten_keys` on PostgreSQL: a forgotten key leaves the key table's pages,
unless a transaction that may still see it is open; then it says so, and a later run works."""

from __future__ import annotations

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
