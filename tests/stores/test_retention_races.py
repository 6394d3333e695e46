"""A tombstone racing appends, with real threads and a store each, on SQLite and PostgreSQL:
one order wins, and nothing is appended after the tombstone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esframework import (
    ConcurrencyError,
    ExpectedVersion,
    Repository,
    SQLiteEventStore,
    StreamClosed,
    StreamClosedError,
)
from tests.domain import MoneyAdded, Wallet
from tests.stores.test_contract import make

WRITERS = 4
CLOSE_AFTER = 20  # acknowledged saves before the closer starts trying
MAX_ATTEMPTS = 5000  # a bound on each writer, so a bug fails the test instead of hanging

StoreFactory = Callable[[], AbstractContextManager[Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens a new store on one database each time: every thread gets its own."""
    if request.param == "sqlite":
        path = tmp_path / "events.db"
        return lambda: SQLiteEventStore(path, timeout=30)
    from esframework.postgres import PostgresEventStore

    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("postgres_schema")
    with PostgresEventStore(dsn, schema=schema) as store:
        store.migrate()
    return lambda: PostgresEventStore(dsn, schema=schema, max_size=2)


def _write_until_closed(
    open_store: StoreFactory, name: str, start: threading.Barrier, saved: list[str]
) -> StreamClosedError | None:
    """Load, deposit and save until the stream is closed; return the error that said so."""
    with open_store() as store:
        wallets = Repository(Wallet, store=store)
        start.wait()
        for attempt in range(MAX_ATTEMPTS):
            try:
                wallet = wallets.load("hot")
                wallet.add(Decimal(1), f"{name}-{attempt}")
                wallets.save(wallet)
            except ConcurrencyError:
                continue
            except StreamClosedError as closed:
                return closed
            saved.append(f"{name}-{attempt}")
    return None


def test_a_tombstone_racing_appends_is_the_last_event(open_store: StoreFactory) -> None:
    """Writers race a closer on one stream: every acknowledged save is in the stream once,
    before the tombstone; every writer is then refused with StreamClosedError naming it."""
    with open_store() as store:
        Repository(Wallet, store=store).save(Wallet.open("hot", "Ada"))
    start = threading.Barrier(WRITERS + 1)
    saved: list[str] = []
    refusals: list[StreamClosedError | None] = []

    def writer(number: int) -> None:
        refusals.append(_write_until_closed(open_store, f"w{number}", start, saved))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    with open_store() as store:
        wallets = Repository(Wallet, store=store)
        start.wait()
        while len(saved) < CLOSE_AFTER and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        conflicts = 0
        while True:  # the closer races the writers as they race each other
            try:
                closed = wallets.tombstone(wallets.load("hot"))
                break
            except ConcurrencyError:
                conflicts += 1
    for thread in threads:
        thread.join()
    with open_store() as store:
        history = list(Repository(Wallet, store=store).history("hot", include_archived=True))
        assert [e.version for e in history] == list(range(1, len(history) + 1))
        assert isinstance(history[-1].event, StreamClosed)
        assert history[-1].version == closed.version
        notes = [e.event.note for e in history if isinstance(e.event, MoneyAdded)]
        assert sorted(notes) == sorted(saved)  # each acknowledged save once, none after
        with pytest.raises(StreamClosedError):
            store.append("hot", "TestWallet", make(1), expected_version=ExpectedVersion.ANY)
    assert len(refusals) == WRITERS
    for refusal in refusals:
        assert refusal is not None
        assert (refusal.stream_id, refusal.version) == ("hot", closed.version)
