"""Real concurrent writers against one PostgreSQL database: threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from decimal import Decimal

from esframework import ConcurrencyError, Repository, aggregate_version
from esframework.postgres import PostgresEventStore
from tests.domain import MoneyAdded, Wallet


def _deposit(dsn: str, schema: str, stream_id: str, saves: int) -> list[str]:
    """Load, deposit and save `saves` times, retrying conflicts; return the saved notes."""
    saved: list[str] = []
    with PostgresEventStore(dsn, schema=schema, max_size=2) as store:
        wallets = Repository(Wallet, store=store)
        name = multiprocessing.current_process().name + threading.current_thread().name
        while len(saved) < saves:
            wallet = wallets.load(stream_id)
            note = f"{name}-{len(saved)}"
            wallet.add(Decimal(1), note)
            try:
                wallets.save(wallet)
            except ConcurrencyError:
                continue
            saved.append(note)
    return saved


def check_history(store: PostgresEventStore, stream_id: str, acknowledged: list[str]) -> None:
    history = list(Repository(Wallet, store=store).history(stream_id))
    assert [e.version for e in history] == list(range(1, len(history) + 1))
    notes = [e.event.note for e in history[1:] if isinstance(e.event, MoneyAdded)]
    assert sorted(notes) == sorted(acknowledged)  # every acknowledged save, exactly once
    wallet = Repository(Wallet, store=store).load(stream_id)
    assert wallet.balance == Decimal(len(acknowledged))
    assert aggregate_version(wallet) == len(acknowledged) + 1


def test_processes_racing_on_one_stream(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """Four processes load-modify-save one stream: one winner per version, nothing lost."""
    Repository(Wallet, store=postgres_store).save(Wallet.open("hot", "Ada"))
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_deposit, [(postgres_dsn, postgres_store.schema, "hot", 30)] * 4)
    check_history(postgres_store, "hot", [note for notes in results for note in notes])


def test_threads_racing_on_one_stream(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """Eight threads with their own stores race on one stream: versions stay contiguous."""
    Repository(Wallet, store=postgres_store).save(Wallet.open("hot", "Ada"))
    acknowledged: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        notes = _deposit(postgres_dsn, postgres_store.schema, "hot", 15)
        with lock:
            acknowledged.extend(notes)

    threads = [threading.Thread(target=run, name=f"t{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(acknowledged) == 8 * 15
    check_history(postgres_store, "hot", acknowledged)
