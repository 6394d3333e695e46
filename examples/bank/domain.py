"""The bank's domain: account events, the Account aggregate and its rules.

Pure domain code: it imports esframework's decorators and nothing about storage.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self

import attrs

from esframework import (
    SnapshotPolicy,
    aggregate,
    aggregate_id,
    applies,
    emit,
    event,
    new,
    personal,
    upcaster,
)

# The largest amount one command moves. Far above any real payment, it keeps a typo (or a
# 1e30) from putting an absurd balance on record, and balances well inside Decimal's precision.
MAX_AMOUNT = Decimal(1_000_000_000)
# Every currency the bank keeps has cents: an amount has at most this many decimal places.
DECIMAL_PLACES = 2


class BankError(Exception):
    """A command broke one of the bank's rules; nothing was changed."""


class InvalidAmountError(BankError):
    """An amount that no command takes: not a finite number, not positive, finer than a
    cent, or above `MAX_AMOUNT`."""

    def __init__(self, amount: Decimal, reason: str) -> None:
        self.amount = amount
        self.reason = reason
        super().__init__(f"invalid amount {amount}: {reason}")


class NonPositiveAmountError(InvalidAmountError):
    def __init__(self, amount: Decimal) -> None:
        super().__init__(amount, "amounts must be positive")


class InsufficientFundsError(BankError):
    def __init__(self, balance: Decimal, amount: Decimal, currency: str) -> None:
        super().__init__(f"cannot withdraw {amount} {currency}: the balance is {balance}")


class AccountNotOpenError(BankError):
    def __init__(self, status: str) -> None:
        super().__init__(f"the account is {status}")


class AccountNotEmptyError(BankError):
    def __init__(self, balance: Decimal, currency: str) -> None:
        super().__init__(f"cannot close an account holding {balance} {currency}")


class CurrencyMismatchError(BankError):
    def __init__(self, expected: str, given: str) -> None:
        super().__init__(f"the account is in {expected}, not {given}")


class AccountExistsError(BankError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} already exists")


class AccountIdTakenError(BankError):
    """The id asked for an account already names another kind of aggregate (a transfer)."""

    def __init__(self, account_id: str, taken_by: str) -> None:
        self.account_id = account_id
        self.taken_by = taken_by
        super().__init__(f"cannot open account {account_id!r}: the id is taken by a {taken_by}")


class SameAccountError(BankError):
    def __init__(self) -> None:
        super().__init__("a transfer needs two different accounts")


# What an account's owner reads as once its customer is forgotten (see `Bank.forget`).
FORGOTTEN_OWNER = "(forgotten)"


# --8<-- [start:account-events]
@event(name="AccountOpened")
class AccountOpened:
    # The owner's name is personal data of the customer: stored sealed with the customer's
    # key, it reads as FORGOTTEN_OWNER once the customer is forgotten. Accounts opened
    # before customers existed have no customer id (and their owner is stored readable).
    owner: str = personal(subject="customer_id", forgotten=FORGOTTEN_OWNER)
    currency: str
    customer_id: str = ""


# --8<-- [start:evolution]
@event(name="MoneyDeposited", version=2)
class MoneyDeposited:
    amount: Decimal
    currency: str


# Version 1 of MoneyDeposited predates currencies: every account then was in euros.
@upcaster("MoneyDeposited", from_version=1)
def _deposits_were_in_euros(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


# --8<-- [end:evolution]


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


# --8<-- [end:account-events]
# --8<-- [start:transfer-events]
# A transfer moves money between two accounts in steps, each an event on one aggregate; the
# transfer process (process.py) reacts to each step with the next command.


@event(name="TransferRequested")
class TransferRequested:
    source: str
    destination: str
    amount: Decimal
    currency: str


@event(name="TransferDebited")
class TransferDebited:
    transfer_id: str
    destination: str
    amount: Decimal
    currency: str


@event(name="TransferCredited")
class TransferCredited:
    transfer_id: str
    source: str
    amount: Decimal
    currency: str


@event(name="TransferRefunded")
class TransferRefunded:
    transfer_id: str
    amount: Decimal
    currency: str
    reason: str


@event(name="TransferCompleted")
class TransferCompleted:
    pass


@event(name="TransferFailed")
class TransferFailed:
    reason: str


# --8<-- [end:transfer-events]
# --8<-- [start:account]
@aggregate(stream_type="Account", snapshots=SnapshotPolicy(every=50))
class Account:
    """A bank account: money in one currency, never overdrawn."""

    # A copy of personal data: declared personal too, so snapshots keep it sealed.
    owner: str = personal(subject="customer_id", forgotten=FORGOTTEN_OWNER, default="")
    customer_id: str = ""
    currency: str = ""
    balance: Decimal = Decimal(0)
    status: str = "open"  # open, frozen or closed
    # Transfers this account took part in, so a redelivered step is recognised.
    transfers_debited: dict[str, Decimal] = attrs.Factory(dict)
    transfers_credited: frozenset[str] = frozenset()
    transfers_refunded: frozenset[str] = frozenset()

    @classmethod
    def open(
        cls, account_id: str, *, owner: str, currency: str, customer_id: str | None = None
    ) -> Self:
        """Open an account for a customer (by default, a customer of its own id)."""
        account = new(cls, account_id)
        customer = account_id if customer_id is None else customer_id
        emit(account, AccountOpened(owner=owner, currency=currency, customer_id=customer))
        return account

    def deposit(self, amount: Decimal) -> None:
        self._check_open()
        check_amount(amount)
        emit(self, MoneyDeposited(amount=amount, currency=self.currency))

    def withdraw(self, amount: Decimal) -> None:
        self._check_can_withdraw(amount)
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

    # Transfer steps. Delivery is at least once, so each step is idempotent: it does nothing
    # for a transfer this account has already seen at that step.

    def debit_for_transfer(
        self, transfer_id: str, *, destination: str, amount: Decimal, currency: str
    ) -> None:
        if transfer_id in self.transfers_debited:
            return
        if currency != self.currency:
            raise CurrencyMismatchError(self.currency, currency)
        self._check_can_withdraw(amount)
        emit(
            self,
            TransferDebited(
                transfer_id=transfer_id, destination=destination, amount=amount, currency=currency
            ),
        )

    def credit_from_transfer(
        self, transfer_id: str, *, source: str, amount: Decimal, currency: str
    ) -> None:
        if transfer_id in self.transfers_credited:
            return
        self._check_open()
        if currency != self.currency:
            raise CurrencyMismatchError(self.currency, currency)
        emit(
            self,
            TransferCredited(
                transfer_id=transfer_id, source=source, amount=amount, currency=currency
            ),
        )

    def refund_transfer(self, transfer_id: str, *, reason: str) -> None:
        if transfer_id in self.transfers_refunded or transfer_id not in self.transfers_debited:
            return
        amount = self.transfers_debited[transfer_id]
        emit(
            self,
            TransferRefunded(
                transfer_id=transfer_id, amount=amount, currency=self.currency, reason=reason
            ),
        )

    def _check_can_withdraw(self, amount: Decimal) -> None:
        self._check_open()
        check_amount(amount)
        if amount > self.balance:
            raise InsufficientFundsError(self.balance, amount, self.currency)

    def _check_open(self) -> None:
        if self.status != "open":
            raise AccountNotOpenError(self.status)

    @applies(AccountOpened)
    def _on_opened(self, e: AccountOpened) -> None:
        self.owner = e.owner
        self.customer_id = e.customer_id or aggregate_id(self)
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

    @applies(TransferDebited)
    def _on_transfer_debited(self, e: TransferDebited) -> None:
        self.balance -= e.amount
        self.transfers_debited = {**self.transfers_debited, e.transfer_id: e.amount}

    @applies(TransferCredited)
    def _on_transfer_credited(self, e: TransferCredited) -> None:
        self.balance += e.amount
        self.transfers_credited |= {e.transfer_id}

    @applies(TransferRefunded)
    def _on_transfer_refunded(self, e: TransferRefunded) -> None:
        self.balance += e.amount
        self.transfers_refunded |= {e.transfer_id}


# --8<-- [end:account]
# --8<-- [start:transfer]
@aggregate(stream_type="Transfer")
class Transfer:
    """A request to move money between two accounts, and how it ended."""

    source: str = ""
    destination: str = ""
    amount: Decimal = Decimal(0)
    currency: str = ""
    status: str = "requested"  # requested, completed or failed
    reason: str = ""

    @classmethod
    def request(
        cls, transfer_id: str, *, source: str, destination: str, amount: Decimal, currency: str
    ) -> Self:
        if source == destination:
            raise SameAccountError
        check_amount(amount)
        transfer = new(cls, transfer_id)
        emit(
            transfer,
            TransferRequested(
                source=source, destination=destination, amount=amount, currency=currency
            ),
        )
        return transfer

    def complete(self) -> None:
        if self.status == "requested":
            emit(self, TransferCompleted())

    def fail(self, reason: str) -> None:
        if self.status == "requested":
            emit(self, TransferFailed(reason=reason))

    @applies(TransferRequested)
    def _on_requested(self, e: TransferRequested) -> None:
        self.source, self.destination = e.source, e.destination
        self.amount, self.currency = e.amount, e.currency

    @applies(TransferCompleted)
    def _on_completed(self, _: TransferCompleted) -> None:
        self.status = "completed"

    @applies(TransferFailed)
    def _on_failed(self, e: TransferFailed) -> None:
        self.status, self.reason = "failed", e.reason


# --8<-- [end:transfer]
# --8<-- [start:amounts]
def check_amount(amount: Decimal) -> None:
    """Raise `InvalidAmountError` unless `amount` is one a command may move.

    Finiteness is checked first: comparing a NaN raises decimal.InvalidOperation, and
    an infinite balance would let any withdrawal through.
    """
    if not amount.is_finite():
        raise InvalidAmountError(amount, "amounts must be finite numbers")
    if amount <= 0:
        raise NonPositiveAmountError(amount)
    if amount > MAX_AMOUNT:
        raise InvalidAmountError(amount, f"amounts must be at most {MAX_AMOUNT}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        raise InvalidAmountError(amount, f"amounts have at most {DECIMAL_PLACES} decimal places")


# --8<-- [end:amounts]
