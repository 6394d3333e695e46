"""Type-checked, not run: user code written like the docs needs no ignores and no plugin.

`mypy --strict` checks this file in .ci/run; `assert_type` fails the check if an inferred type
drifts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self, assert_type

from esframework import (
    AppendResult,
    AsyncRepository,
    Envelope,
    InMemoryEventStore,
    Repository,
    SaveResult,
    SnapshotPolicy,
    StreamClosed,
    StreamClosedError,
    aggregate,
    aggregate_version,
    applies,
    emit,
    event,
    new,
)
from esframework.testing import scenario


@event(name="TypingDeposited", version=2)
class Deposited:
    amount: Decimal
    note: str = ""


@aggregate(stream_type="TypingAccount", snapshots=SnapshotPolicy(every=10))
class Account:
    balance: Decimal = Decimal(0)

    @classmethod
    def open(cls, account_id: str) -> Self:
        return new(cls, account_id)

    def deposit(self, amount: Decimal) -> None:
        emit(self, Deposited(amount=amount))

    @applies(Deposited)
    def _on_deposited(self, e: Deposited) -> None:
        self.balance += e.amount


def sync_use() -> None:
    accounts = Repository(Account, store=InMemoryEventStore())
    account = Account.open("a")
    account.deposit(Decimal(1))
    assert_type(accounts.save(account), SaveResult | None)
    loaded = accounts.load("a")
    assert_type(loaded, Account)
    assert_type(loaded.balance, Decimal)
    assert_type(aggregate_version(loaded), int)
    for envelope in accounts.history("a"):
        assert_type(envelope, Envelope[Any])
    deposited = Deposited(amount=Decimal(1))
    assert_type(deposited.amount, Decimal)
    assert_type(
        scenario(Account).given(deposited).when(lambda a: a.deposit(Decimal(2))).then(), Account
    )
    assert_type(accounts.tombstone(loaded), AppendResult)
    try:
        accounts.load("a")
    except StreamClosedError as closed:
        assert_type(closed.version, int)
        assert_type(accounts.load("a", at_version=closed.version - 1), Account)
    for envelope in accounts.history("a", include_archived=True):
        if isinstance(envelope.event, StreamClosed):
            assert_type(envelope.version, int)
    accounts.store.truncate_before("a", 1)


async def async_use(accounts: AsyncRepository[Account]) -> None:
    loaded = await accounts.load("a")
    assert_type(loaded, Account)
    loaded.deposit(Decimal(3))
    await accounts.save(loaded)
    assert_type(await accounts.tombstone(loaded), AppendResult)
