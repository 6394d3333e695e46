"""`purge_forgotten_keys` on SQLite: the write-ahead log's copies of a deleted key go too."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from esframework import AsyncRepository, AsyncSQLiteEventStore, Repository, SQLiteEventStore
from esframework.errors import StoreError
from tests.personal.domain import Customer


def _files(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


def _forgotten_key(store: SQLiteEventStore) -> bytes:
    """Save two customers, forget the first; return the key it had."""
    customers = Repository(Customer, store=store)
    customers.save(Customer.register("c-1", "ada@example.com"))
    customers.save(Customer.register("c-2", "grace@example.com"))
    key = store.personal_data_keys(["c-1"])["c-1"]
    assert key is not None
    store.forget_personal_data("c-1")
    return key


def test_the_log_is_truncated_and_the_key_is_nowhere_in_the_files(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "events.db") as store:
        key = _forgotten_key(store)
        live = store.personal_data_keys(["c-2"])["c-2"]
        assert key in _files(tmp_path)  # the write-ahead log kept the page it was on
        store.purge_forgotten_keys()
        assert key not in _files(tmp_path)
        assert live is not None
        assert live in _files(tmp_path)
        assert (tmp_path / "events.db-wal").stat().st_size == 0
        assert Repository(Customer, store=store).load("c-2").email == "grace@example.com"


def test_the_async_store_purges_too(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        async with AsyncSQLiteEventStore(tmp_path / "events.db") as store:
            await AsyncRepository(Customer, store=store).save(Customer.register("c-1", "a@x"))
            key = (await store.personal_data_keys(["c-1"]))["c-1"]
            assert key is not None
            await store.forget_personal_data("c-1")
            assert key in _files(tmp_path)
            await store.purge_forgotten_keys()
            return key

    key = asyncio.run(scenario())
    assert key not in _files(tmp_path)


def test_a_reader_in_the_way_fails_the_purge_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteEventStore(path, timeout=0.2) as store:
        key = _forgotten_key(store)
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM events").fetchone()  # reads from the log
            with pytest.raises(StoreError, match="another connection is reading or writing"):
                store.purge_forgotten_keys()
        finally:
            reader.close()
        store.purge_forgotten_keys()  # once it is done
        assert key not in _files(tmp_path)
        assert Repository(Customer, store=store).load("c-2").email == "grace@example.com"


def test_not_inside_a_unit_of_work(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "events.db") as store:
        _forgotten_key(store)
        with store.transaction(), pytest.raises(StoreError, match="inside a transaction"):
            store.purge_forgotten_keys()
