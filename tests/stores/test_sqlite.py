"""SQLite-only behaviour: a real file, several processes, history that cannot be rewritten."""

from __future__ import annotations

import multiprocessing
import sqlite3
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest

from esframework import ConcurrencyError, Repository, SQLiteEventStore
from tests.domain import Wallet


def test_events_survive_reopening_the_file(sqlite_path: Path) -> None:
    """What one store object wrote, another reads after the first is closed."""
    with SQLiteEventStore(sqlite_path) as store:
        wallet = Wallet.open("w", "Ada")
        wallet.add(Decimal("9.99"))
        Repository(Wallet, store=store).save(wallet)
    with SQLiteEventStore(sqlite_path) as store:
        assert Repository(Wallet, store=store).load("w").balance == Decimal("9.99")


@pytest.mark.parametrize("statement", ["UPDATE events SET event_data = '{}'", "DELETE FROM events"])
def test_events_cannot_be_updated_or_deleted(sqlite_path: Path, statement: str) -> None:
    """The database itself rejects UPDATE and DELETE on the events table."""
    with SQLiteEventStore(sqlite_path) as store:
        Repository(Wallet, store=store).save(Wallet.open("w", "Ada"))
    db = sqlite3.connect(sqlite_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)
    db.close()
    with SQLiteEventStore(sqlite_path) as store:
        assert Repository(Wallet, store=store).load("w").owner == "Ada"


def _deposit_many(path: str, count: int) -> int:
    conflicts = 0
    with SQLiteEventStore(path) as store:
        wallets = Repository(Wallet, store=store)
        done = 0
        while done < count:
            wallet = wallets.load("shared")
            wallet.add(Decimal(1))
            try:
                wallets.save(wallet)
                done += 1
            except ConcurrencyError:
                conflicts += 1
    return conflicts


def test_processes_sharing_one_file_lose_nothing(sqlite_path: Path) -> None:
    """Four processes load-modify-save one stream in one file; every acknowledged save counts."""
    with SQLiteEventStore(sqlite_path) as store:
        Repository(Wallet, store=store).save(Wallet.open("shared", "Ada"))
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.starmap(_deposit_many, [(str(sqlite_path), 25)] * 4)
    with SQLiteEventStore(sqlite_path) as store:
        wallet = Repository(Wallet, store=store).load("shared")
        versions = [e.version for e in store.read_stream("shared")]
    assert wallet.balance == Decimal(100)
    assert versions == list(range(1, 102))


@pytest.mark.parametrize("where", ["no-such-folder/events.db", "."])
def test_a_path_that_cannot_be_opened_is_a_store_error_naming_it(
    tmp_path: Path, where: str
) -> None:
    """A missing folder, or a folder, is StoreUnavailableError with the path, not sqlite3's."""
    from esframework.errors import StoreUnavailableError

    path = tmp_path / where
    with SQLiteEventStore(path) as store, pytest.raises(StoreUnavailableError) as caught:
        store.head()
    assert str(path) in str(caught.value)
    assert not (tmp_path / "no-such-folder").exists()


def test_file_from_a_newer_release_is_refused(sqlite_path: Path) -> None:
    """A file whose schema is newer than this release is not touched."""
    from esframework.errors import StoreError

    db = sqlite3.connect(sqlite_path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with SQLiteEventStore(sqlite_path) as store, pytest.raises(StoreError, match="newer"):
        store.head()


def test_a_file_of_the_release_before_tags_upgrades_in_place(sqlite_path: Path) -> None:
    """A file whose schema predates tags gains them when opened: its events read with no
    tags, and new events are tagged and found by query."""
    from esframework import NewEvent, Query, QueryItem
    from esframework._sqlite_queries import TAGS_SCHEMA
    from esframework._sqlite_schema import SCHEMA

    old = SCHEMA[: len(SCHEMA) - len(TAGS_SCHEMA)]
    db = sqlite3.connect(sqlite_path, isolation_level=None)
    for statement in old:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {len(old)}")
    db.execute(
        "INSERT INTO events (id, stream_id, stream_type, event_type, event_data, version, "
        "created_at) VALUES ('6f1c0a52-93c5-4a26-8a8e-6b1d2b7d1e01', 'w', 'S', 'Old', '{}', 1, "
        "'2025-01-01T00:00:00+00:00')"
    )
    db.close()
    with SQLiteEventStore(sqlite_path) as store:
        (old_event,) = store.read_stream("w")
        assert old_event.tags == ()
        store.append(
            "w",
            "S",
            [NewEvent(uuid4(), "New", 1, "{}", tags=("t:1",))],
            expected_version=1,
        )
        found = store.read_query(Query.of(QueryItem(tags=["t:1"])))
        assert [(e.event_type, e.tags) for e in found.events] == [("New", ("t:1",))]
        assert len(store.read_query(Query.of(QueryItem(types=["Old"]))).events) == 1
