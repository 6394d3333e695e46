"""The bank's domain: account events, the Account aggregate and its rules.

Pure domain code: it imports esframework's decorators and nothing about storage.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self

from esframework import SnapshotPolicy, aggregate, applies, emit, event, new, upcaster


class BankError(Exception):
    """A command broke one of the bank's rules; nothing was changed."""


class NonPositiveAmountError(BankError):
    def __init__(self, amount: Decimal) -> None:
        super().__init__(f"amounts must be positive, got {amount}")


class InsufficientFundsError(BankError):
    def __init__(self, balance: Decimal, amount: Decimal, currency: str) -> None:
        super().__init__(f"cannot withdraw {amount} {currency}: the balance is {balance}")


class AccountNotOpenError(BankError):
    def __init__(self, status: str) -> None:
        super().__init__(f"the account is {status}")


class AccountNotEmptyError(BankError):
    def __init__(self, balance: Decimal, currency: str) -> None:
        super().__init__(f"cannot close an account holding {balance} {currency}")


@event(name="AccountOpened")
class AccountOpened:
    owner: str
    currency: str


@event(name="MoneyDeposited", version=2)
class MoneyDeposited:
    amount: Decimal
    currency: str


# Version 1 of MoneyDeposited predates currencies: every account then was in euros.
@upcaster("MoneyDeposited", from_version=1)
def _deposits_were_in_euros(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


@event(name="MoneyWithdrawn")
class MoneyWithdrawn:
    amount: Decimal
    currency: str


@event(name="AccountFrozen")
class AccountFrozen:
    reason: str


@event(name="AccountUnfrozen")
class AccountUnfrozen:
    pass


@event(name="AccountClosed")
class AccountClosed:
    pass


@aggregate(stream_type="Account", snapshots=SnapshotPolicy(every=50))
class Account:
    """A bank account: money in one currency, never overdrawn."""

    owner: str = ""
    currency: str = ""
    balance: Decimal = Decimal(0)
    status: str = "open"  # open, frozen or closed

    @classmethod
    def open(cls, account_id: str, *, owner: str, currency: str) -> Self:
        account = new(cls, account_id)
        emit(account, AccountOpened(owner=owner, currency=currency))
        return account

    def deposit(self, amount: Decimal) -> None:
        self._check_open()
        _check_positive(amount)
        emit(self, MoneyDeposited(amount=amount, currency=self.currency))

    def withdraw(self, amount: Decimal) -> None:
        self._check_open()
        _check_positive(amount)
        if amount > self.balance:
            raise InsufficientFundsError(self.balance, amount, self.currency)
        emit(self, MoneyWithdrawn(amount=amount, currency=self.currency))

    def freeze(self, reason: str) -> None:
        self._check_open()
        emit(self, AccountFrozen(reason=reason))

    def unfreeze(self) -> None:
        if self.status != "frozen":
            raise AccountNotOpenError(f"{self.status}, not frozen")
        emit(self, AccountUnfrozen())

    def close(self) -> None:
        self._check_open()
        if self.balance:
            raise AccountNotEmptyError(self.balance, self.currency)
        emit(self, AccountClosed())

    def _check_open(self) -> None:
        if self.status != "open":
            raise AccountNotOpenError(self.status)

    @applies(AccountOpened)
    def _on_opened(self, e: AccountOpened) -> None:
        self.owner = e.owner
        self.currency = e.currency

    @applies(MoneyDeposited)
    def _on_deposited(self, e: MoneyDeposited) -> None:
        self.balance += e.amount

    @applies(MoneyWithdrawn)
    def _on_withdrawn(self, e: MoneyWithdrawn) -> None:
        self.balance -= e.amount

    @applies(AccountFrozen)
    def _on_frozen(self, _: AccountFrozen) -> None:
        self.status = "frozen"

    @applies(AccountUnfrozen)
    def _on_unfrozen(self, _: AccountUnfrozen) -> None:
        self.status = "open"

    @applies(AccountClosed)
    def _on_closed(self, _: AccountClosed) -> None:
        self.status = "closed"


def _check_positive(amount: Decimal) -> None:
    if not amount > 0:
        raise NonPositiveAmountError(amount)
