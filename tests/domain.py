"""A small domain the tests share: a counter and a wallet."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from esframework import SnapshotPolicy, aggregate, applies, emit, event, new


@event(name="TestWalletOpened")
class WalletOpened:
    owner: str


@event(name="TestMoneyAdded")
class MoneyAdded:
    amount: Decimal
    note: str = ""


@event(name="TestWalletRenamed")
class WalletRenamed:
    owner: str


class InsufficientFundsError(Exception):
    pass


@aggregate(stream_type="TestWallet")
class Wallet:
    owner: str = ""
    balance: Decimal = Decimal(0)

    @classmethod
    def open(cls, wallet_id: str, owner: str) -> Self:
        wallet = new(cls, wallet_id)
        emit(wallet, WalletOpened(owner=owner))
        return wallet

    def add(self, amount: Decimal, note: str = "") -> None:
        emit(self, MoneyAdded(amount=amount, note=note))

    @applies(WalletOpened)
    def _on_opened(self, e: WalletOpened) -> None:
        self.owner = e.owner

    @applies(MoneyAdded)
    def _on_added(self, e: MoneyAdded) -> None:
        self.balance += e.amount


@aggregate(stream_type="TestSnapshottedWallet", snapshots=SnapshotPolicy(every=5))
class SnapshottedWallet(Wallet):
    pass
