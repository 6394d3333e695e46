"""The statement's counterparty column rolled out by a blue/green rebuild, readers served."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest

from esframework import (
    Envelope,
    Subscription,
    SubscriptionStore,
    SubscriptionWorker,
    execute_sql,
    replaying,
)
from esframework.errors import ProjectionVersionError, StoreError
from examples.bank.app import Bank
from examples.bank.domain import MoneyDeposited
from examples.bank.process import transfer_process
from examples.bank.projections import ACCOUNTS, AccountsProjection, Views, accounts_subscription


@attrs.frozen
class Spy:
    """The accounts projection of one version, noting whether each call was a replay."""

    projection: AccountsProjection
    seen: list[tuple[str, bool]]

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        self.seen.append((self.projection.version, replaying()))
        self.projection.handle(envelope, connection)

    def reset(self, connection: Any) -> None:
        self.projection.reset(connection)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the read model did not catch up"
        time.sleep(0.01)


def deposits(bank: Bank) -> int:
    return sum(isinstance(e.event, MoneyDeposited) for e in bank.history("alice"))


def test_counterparty_column_rolled_out_while_readers_read(
    store: SubscriptionStore[Any],
) -> None:
    """v1 serves and stays up to date while v2 is built beside it; a reader reading all along
    never sees the statement empty or shorter than before (no step back behind the live
    lag); after the switch it reads v2's new column; v1 is retired; only v2's build was a
    replay."""
    seen: list[tuple[str, bool]] = []

    def subscription(version: str) -> Subscription[Any]:
        plain = accounts_subscription(version)
        spy = Spy(AccountsProjection(version), seen)
        return attrs.evolve(plain, handler=spy, poll_interval=0.05)

    accounts = attrs.evolve(ACCOUNTS, subscription=subscription)
    accounts.install(store, "v1")  # the first release, live before v2 was written
    bank, views = Bank(store), Views(store)
    bank.open_account("alice", owner="Alice", currency="EUR")
    bank.open_account("bob", owner="Bob", currency="EUR")
    for _ in range(150):
        bank.deposit("alice", Decimal(2))
    bank.request_transfer("alice", "bob", Decimal(5), transfer_id="t-1")
    SubscriptionWorker(store, transfer_process(bank)).run(until_caught_up=True)

    def run(worker: SubscriptionWorker[Any]) -> threading.Thread:
        thread = threading.Thread(target=worker.run)
        thread.start()
        return thread

    reader_stop, writer_stop = threading.Event(), threading.Event()
    live_worker = SubscriptionWorker(store, subscription("v1"))
    live = run(live_worker)
    wait_for(lambda: len(views.statement("alice")) == 151)  # v1 serving: 150 deposits, a debit

    lengths: list[int] = []
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while not reader_stop.is_set():
                lengths.append(len(views.statement("alice")))
        except BaseException as error:
            failures.append(error)

    def write() -> None:
        while not writer_stop.wait(0.005):
            bank.deposit("alice", Decimal(1))

    reader, writer = threading.Thread(target=read), threading.Thread(target=write)
    reader.start()
    writer.start()
    try:
        assert accounts.rebuild(store, "v2") is True
        with store.transaction() as connection:
            assert accounts.active(connection) == "v2"
        new_worker = SubscriptionWorker(store, subscription("v2"))
        new = run(new_worker)
        writer_stop.set()
        writer.join()
        bank.deposit("alice", Decimal(1))
        wait_for(lambda: len(views.statement("alice")) == deposits(bank) + 1)
    finally:
        writer_stop.set()
        reader_stop.set()
        live_worker.stopper.set()
        reader.join()
        live.join()
    new_worker.stopper.set()
    new.join()

    assert failures == []
    assert min(lengths) >= 151
    assert lengths == sorted(lengths)  # never a step back, across the switch too
    assert lengths[-1] == len(views.statement("alice"))
    assert lengths[-1] > 151  # the writer's deposits reached the readers
    assert {replayed for version, replayed in seen if version == "v1"} == {False}
    assert ("v2", True) in seen  # the build
    assert ("v2", False) in seen  # the deposit after the switch, delivered live
    assert [c for _, c in views.counterparties("alice") if c] == ["bob"]
    assert [c for _, c in views.counterparties("bob")] == ["alice"]

    with pytest.raises(ProjectionVersionError, match="'v2': is the active version"):
        accounts.retire(store, "v2")
    accounts.retire(store, "v1")
    with (
        pytest.raises((sqlite3.OperationalError, StoreError)),  # PostgreSQL's is wrapped
        store.transaction() as connection,
    ):
        execute_sql(connection, "SELECT * FROM bank_statement")


def test_refuses_the_active_version_and_a_projection_not_installed(
    store: SubscriptionStore[Any],
) -> None:
    """Rebuilding or retiring the version readers use, or a projection without a version,
    is refused by name, and nothing is dropped."""
    attrs.evolve(ACCOUNTS, projection="bank-other").install(store, "v1")  # the table only
    with pytest.raises(ProjectionVersionError, match="'bank-accounts' version None"):
        ACCOUNTS.rebuild(store, "v2")
    ACCOUNTS.install(store, "v1")
    ACCOUNTS.install(store, "v2")  # a second install keeps the active version
    with store.transaction() as connection:
        assert ACCOUNTS.active(connection) == "v1"
    with pytest.raises(ProjectionVersionError, match="'v1': is the active version"):
        ACCOUNTS.rebuild(store, "v1")
    with pytest.raises(ProjectionVersionError, match="'v1': is the active version"):
        ACCOUNTS.retire(store, "v1")
    assert Views(store).statement("alice") == []  # v1's tables are still there


def test_a_stopped_rebuild_leaves_the_live_version_active(store: SubscriptionStore[Any]) -> None:
    """A rebuild stopped before it switches returns False and readers keep the old version."""
    ACCOUNTS.install(store, "v1")
    Bank(store).open_account("alice", owner="Alice", currency="EUR")
    stopper = SubscriptionWorker(store, accounts_subscription("v2")).stopper
    stopper.set()
    assert ACCOUNTS.rebuild(store, "v2", stopper=stopper) is False
    with store.transaction() as connection:
        assert ACCOUNTS.active(connection) == "v1"
