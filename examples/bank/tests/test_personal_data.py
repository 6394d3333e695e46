"""The owner's name is personal data: sealed in the store, dropped from the read models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from esframework import SubscriptionStore
from examples.bank.app import Bank
from examples.bank.domain import FORGOTTEN_OWNER
from examples.bank.projections import Views, create_tables
from examples.bank.worker import build


def test_forgetting_a_customer_reaches_loads_snapshots_and_read_models(
    store: SubscriptionStore[Any],
) -> None:
    create_tables(store)
    bank = Bank(store)
    bank.open_account("ann-1", owner="Ann Ames", currency="EUR", customer_id="ann")
    bank.open_account("ben", owner="Ben Bell", currency="EUR")
    for _ in range(50):  # past the snapshot policy's 50 events: the state is snapshotted
        bank.deposit("ann-1", Decimal(1))
    snapshot = store.load_snapshot("ann-1")
    assert snapshot is not None
    assert "Ann Ames" not in snapshot.data
    assert all("Ann Ames" not in e.data for e in store.iter_all())
    runner = build(store)
    runner.run_until_caught_up()
    views = Views(store)
    assert [(a, o) for a, o, *_ in views.balances()] == [("ann-1", "Ann Ames"), ("ben", "Ben Bell")]

    bank.forget("ann", reason="asked to")
    assert bank.account("ann-1").owner == FORGOTTEN_OWNER
    assert bank.account("ann-1").balance == 50
    assert bank.account("ben").owner == "Ben Bell"
    runner.run_until_caught_up()
    assert [(a, o) for a, o, *_ in views.balances()] == [
        ("ann-1", FORGOTTEN_OWNER),
        ("ben", "Ben Bell"),
    ]
    bank.deposit("ann-1", Decimal(1))  # the account keeps working
    assert bank.account("ann-1").balance == 51
