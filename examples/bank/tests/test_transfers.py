"""Transfers run by the process on a subscription, the read models, redelivery and races."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from esframework import Envelope, Repository, Serializer, SubscriptionStore, aggregate_id
from esframework.errors import StreamTypeMismatchError
from esframework.testing import assert_snapshot_matches_replay
from examples.bank.app import Bank
from examples.bank.domain import Account, AccountIdTakenError, InvalidAmountError, Transfer
from examples.bank.process import TransferProcess
from examples.bank.projections import Views
from examples.bank.worker import build


def open_accounts(bank: Bank, *specs: tuple[str, str, str]) -> None:
    for account, currency, amount in specs:
        bank.open_account(account, owner=account.title(), currency=currency)
        if Decimal(amount):
            bank.deposit(account, Decimal(amount))


def test_transfers_complete_fail_and_refund(store: SubscriptionStore[Any]) -> None:
    """A transfer completes; one the source cannot pay fails; one the destination cannot
    take is refunded and fails with the reason; the read models agree with the accounts."""
    bank = Bank(store)
    open_accounts(bank, ("alice", "EUR", "100"), ("bob", "EUR", "0"), ("carol", "EUR", "0"))
    open_accounts(bank, ("dave", "USD", "0"))
    bank.close("carol")
    ok = bank.request_transfer("alice", "bob", Decimal(30), transfer_id="t-ok")
    too_much = bank.request_transfer("bob", "alice", Decimal(500), transfer_id="t-poor")
    closed = bank.request_transfer("alice", "carol", Decimal(10), transfer_id="t-closed")
    currency = bank.request_transfer("alice", "dave", Decimal(5), transfer_id="t-usd")
    missing = bank.request_transfer("alice", "nobody", Decimal(1), transfer_id="t-missing")
    build(store).run_until_caught_up()

    outcome = {aggregate_id(t): bank.transfer(aggregate_id(t)) for t in (ok, too_much, closed)}
    assert outcome["t-ok"].status == "completed"
    assert outcome["t-poor"].status == "failed"
    assert "cannot withdraw 500" in outcome["t-poor"].reason
    assert outcome["t-closed"].status == "failed"
    assert "closed" in outcome["t-closed"].reason
    assert bank.transfer(aggregate_id(currency)).status == "failed"
    assert "USD" in bank.transfer(aggregate_id(currency)).reason
    assert "not found" in bank.transfer(aggregate_id(missing)).reason
    balances = {a: bank.account(a).balance for a in ("alice", "bob", "carol", "dave")}
    assert balances == {"alice": Decimal(70), "bob": Decimal(30), "carol": 0, "dave": 0}

    views = Views(store)
    assert {a: b for a, _, _, b, _ in views.balances()} == balances
    statuses = {t: s for t, _, _, _, _, s, _ in views.transfers()}
    assert statuses == {
        "t-ok": "completed",
        "t-poor": "failed",
        "t-closed": "failed",
        "t-usd": "failed",
        "t-missing": "failed",
    }
    lines = [(d, a) for _, _, d, a, _ in views.statement("alice")]
    assert ("transfer to nobody", Decimal(-1)) in lines
    assert ("refund: the destination refused: the account is closed", Decimal(10)) in lines
    assert views.statement("alice")[-1][4] == Decimal(70)


def test_redelivered_steps_never_move_money_twice(store: SubscriptionStore[Any]) -> None:
    """Delivering every transfer step again (at-least-once) changes nothing."""
    bank = Bank(store)
    open_accounts(bank, ("alice", "EUR", "100"), ("bob", "EUR", "0"), ("carol", "EUR", "0"))
    bank.close("carol")
    bank.request_transfer("alice", "bob", Decimal(30))
    bank.request_transfer("alice", "carol", Decimal(10))
    build(store).run_until_caught_up()
    before = {a: bank.account(a).balance for a in ("alice", "bob")}
    serializer, process = Serializer(), TransferProcess(bank)
    steps: list[Envelope[Any]] = [
        serializer.decode(record)
        for record in store.iter_all()
        if record.event_type in {"TransferRequested", "TransferDebited", "TransferCredited"}
    ]
    for envelope in steps * 2:  # every step delivered twice more
        process(envelope, None)
    assert {a: bank.account(a).balance for a in ("alice", "bob")} == before


def test_concurrent_transfers_touching_the_same_accounts(store: SubscriptionStore[Any]) -> None:
    """Threads request transfers among three accounts while the process runs live: every
    transfer ends, no money appears or vanishes, and each balance matches its transfers."""
    bank = Bank(store)
    accounts = ("a", "b", "c")
    open_accounts(bank, *[(a, "EUR", "100") for a in accounts])
    runner = build(store)
    running = threading.Thread(target=runner.run, daemon=True)
    running.start()
    requested: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(10):
            source, destination = rng.sample(accounts, 2)
            amount = Decimal(rng.randint(1, 60))
            transfer = Bank(store).request_transfer(source, destination, amount)
            with lock:
                requested.append(aggregate_id(transfer))

    clients = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    deadline = threading.Event()
    for _ in range(600):
        if all(bank.transfer(t).status != "requested" for t in requested):
            break
        deadline.wait(0.1)
    runner.stop()
    running.join(30)
    runner.run_until_caught_up()  # the projections finish what they have not seen

    transfers = [bank.transfer(t) for t in requested]
    assert all(t.status in {"completed", "failed"} for t in transfers)
    expected = {a: Decimal(100) for a in accounts}
    for t in transfers:
        if t.status == "completed":
            expected[t.source] -= t.amount
            expected[t.destination] += t.amount
    assert {a: bank.account(a).balance for a in accounts} == expected
    assert sum(expected.values()) == Decimal(300)
    views = Views(store)
    assert {a: b for a, _, _, b, _ in views.balances()} == expected


def test_a_failed_transfer_redelivered_later_moves_no_money(store: SubscriptionStore[Any]) -> None:
    """A transfer that failed for lack of funds stays failed and debits nothing when its
    request is delivered again after the source was funded."""
    bank = Bank(store)
    open_accounts(bank, ("poor", "EUR", "0"), ("rich", "EUR", "0"))
    bank.request_transfer("poor", "rich", Decimal(50), transfer_id="t-late")
    build(store).run_until_caught_up()
    assert bank.transfer("t-late").status == "failed"
    bank.deposit("poor", Decimal(100))
    request = next(
        Serializer().decode(r) for r in store.iter_all() if r.event_type == "TransferRequested"
    )
    TransferProcess(bank)(request, None)
    assert bank.account("poor").balance == Decimal(100)
    assert bank.transfer("t-late").status == "failed"


def test_snapshots_of_accounts_and_transfers_match_their_replay(
    store: SubscriptionStore[Any],
) -> None:
    """Accounts and transfers loaded through a snapshot equal their full replay."""
    bank = Bank(store)
    open_accounts(bank, ("alice", "EUR", "100"), ("bob", "EUR", "0"))
    bank.request_transfer("alice", "bob", Decimal(30), transfer_id="t-snap")
    build(store).run_until_caught_up()
    for account in ("alice", "bob"):
        assert_snapshot_matches_replay(Repository(Account, store=store), account)
    transfer = assert_snapshot_matches_replay(Repository(Transfer, store=store), "t-snap")
    assert transfer.status == "completed"


def test_ids_of_the_other_aggregate_type(store: SubscriptionStore[Any]) -> None:
    """An account cannot be opened under a transfer's id (the bank's own error, nothing
    written); a transfer to a transfer's id is refunded, and the process keeps running."""
    bank = Bank(store)
    open_accounts(bank, ("alice", "EUR", "100"), ("bob", "EUR", "0"))
    bank.request_transfer("alice", "bob", Decimal(30), transfer_id="t-first")
    with pytest.raises(AccountIdTakenError, match="'t-first': the id is taken by a Transfer"):
        bank.open_account("t-first", owner="Eve", currency="EUR")
    assert [r.event_type for r in store.read_stream("t-first")] == ["TransferRequested"]
    bank.request_transfer("alice", "t-first", Decimal(5), transfer_id="t-to-a-transfer")
    build(store).run_until_caught_up()
    assert bank.transfer("t-first").status == "completed"
    refused = bank.transfer("t-to-a-transfer")
    assert refused.status == "failed"
    assert refused.reason == "the destination refused: 't-first' is not an account but a Transfer"
    assert bank.account("alice").balance == Decimal(70)
    with pytest.raises(StreamTypeMismatchError):
        bank.request_transfer("t-first", "bob", Decimal(1))


def test_bad_amounts_store_nothing(store: SubscriptionStore[Any]) -> None:
    """The bank refuses a bad amount before anything is written, on every store."""
    bank = Bank(store)
    open_accounts(bank, ("alice", "EUR", "100"), ("bob", "EUR", "0"))
    commands: list[Callable[[Decimal], object]] = [
        lambda amount: bank.deposit("alice", amount),
        lambda amount: bank.withdraw("alice", amount),
        lambda amount: bank.request_transfer("alice", "bob", amount),
    ]
    for text in ("NaN", "sNaN", "Infinity", "-Infinity", "1e30", "0", "-1", "0.001"):
        for command in commands:
            with pytest.raises(InvalidAmountError):
                command(Decimal(text))
    assert [r.event_type for r in store.iter_all()] == [
        "AccountOpened",
        "MoneyDeposited",
        "AccountOpened",
    ]
