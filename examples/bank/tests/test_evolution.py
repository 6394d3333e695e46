"""The bank's stored history evolves: old deposits load, accounts are snapshotted."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from esframework import NewEvent, SubscriptionStore, aggregate_version
from examples.bank.app import Bank
from examples.bank.domain import MoneyDeposited


def test_deposits_from_before_currencies_load_in_euros(store: SubscriptionStore[Any]) -> None:
    """A version-1 MoneyDeposited row (no currency) loads as version 2, in euros."""
    bank = Bank(store)
    bank.open_account("old", owner="Olga", currency="EUR")
    store.append(
        "old",
        "Account",
        [
            NewEvent(
                event_id=uuid.uuid4(),
                event_type="MoneyDeposited",
                schema_version=1,
                data='{"amount": "12.50"}',
            )
        ],
        expected_version=1,
    )
    assert bank.account("old").balance == Decimal("12.50")
    events = [e.event for e in bank.history("old")]
    assert events[-1] == MoneyDeposited(amount=Decimal("12.50"), currency="EUR")


def test_accounts_are_snapshotted_every_50_events(store: SubscriptionStore[Any]) -> None:
    """The account's snapshot policy stores its state every 50 events."""
    bank = Bank(store)
    bank.open_account("busy", owner="Bea", currency="EUR")
    for _ in range(60):
        bank.deposit("busy", Decimal(1))
    snapshot = store.load_snapshot("busy")
    assert snapshot is not None
    assert snapshot.version == 50
    account = bank.account("busy")
    assert (account.balance, aggregate_version(account)) == (Decimal(60), 61)
