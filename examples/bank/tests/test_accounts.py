"""Every rule of accounts and transfers, as given/when/then scenarios."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from esframework.testing import scenario
from examples.bank.domain import (
    MAX_AMOUNT,
    Account,
    AccountClosed,
    AccountFrozen,
    AccountNotEmptyError,
    AccountNotOpenError,
    AccountOpened,
    CurrencyMismatchError,
    InsufficientFundsError,
    InvalidAmountError,
    MoneyDeposited,
    MoneyWithdrawn,
    NonPositiveAmountError,
    SameAccountError,
    Transfer,
    TransferCompleted,
    TransferCredited,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)

OPENED = AccountOpened(owner="Ada", currency="EUR", customer_id="a")
FUNDED = (OPENED, MoneyDeposited(amount=Decimal("50.00"), currency="EUR"))
DEBITED = TransferDebited(
    transfer_id="t1", destination="b", amount=Decimal("20.00"), currency="EUR"
)


def test_open() -> None:
    """Opening an account records its owner and currency."""
    account = (
        scenario(Account)
        .when(lambda _: Account.open("a", owner="Ada", currency="EUR"))
        .then(OPENED)
    )
    assert (account.owner, account.currency, account.balance) == ("Ada", "EUR", Decimal(0))


def test_deposit() -> None:
    """A deposit adds money in the account's currency."""
    scenario(Account).given(OPENED).when(lambda a: a.deposit(Decimal("12.30"))).then(
        MoneyDeposited(amount=Decimal("12.30"), currency="EUR")
    )


def test_amounts_must_be_positive() -> None:
    """Zero and negative amounts are refused."""
    for amount in (Decimal(0), Decimal(-1)):

        def deposit(account: Account, amount: Decimal = amount) -> None:
            account.deposit(amount)

        scenario(Account).given(OPENED).when(deposit).then_raises(NonPositiveAmountError)


BAD_AMOUNTS = {
    "NaN": "finite",
    "sNaN": "finite",
    "Infinity": "finite",
    "-Infinity": "finite",
    "1e30": "at most 1000000000",
    "1000000000.01": "at most 1000000000",
    "0": "positive",
    "-0.00": "positive",
    "-5": "positive",
    "0.001": "at most 2 decimal places",
    "12.345": "at most 2 decimal places",
}
# Every command that takes an amount from outside; funded far above MAX_AMOUNT, so only the
# amount rule can refuse.
RICH = (
    OPENED,
    *(MoneyDeposited(amount=MAX_AMOUNT, currency="EUR") for _ in range(3)),
)
AMOUNT_COMMANDS: dict[str, Callable[[Account, Decimal], object]] = {
    "deposit": Account.deposit,
    "withdraw": Account.withdraw,
    "debit_for_transfer": lambda a, amount: a.debit_for_transfer(
        "t1", destination="b", amount=amount, currency="EUR"
    ),
}


@pytest.mark.parametrize("command", AMOUNT_COMMANDS)
@pytest.mark.parametrize("text", BAD_AMOUNTS)
def test_bad_amounts_are_refused(command: str, text: str) -> None:
    """Non-finite, non-positive, finer than a cent or absurd amounts get the bank's error."""
    run = AMOUNT_COMMANDS[command]
    scenario(Account).given(*RICH).when(lambda a: run(a, Decimal(text))).then_raises(
        InvalidAmountError, match=BAD_AMOUNTS[text]
    )


@pytest.mark.parametrize("text", BAD_AMOUNTS)
def test_bad_transfer_amounts_are_refused(text: str) -> None:
    """A transfer cannot be requested for an amount no account command would take."""
    scenario(Transfer).when(
        lambda _: Transfer.request(
            "t1", source="a", destination="b", amount=Decimal(text), currency="EUR"
        )
    ).then_raises(InvalidAmountError, match=BAD_AMOUNTS[text])


@pytest.mark.parametrize("text", ["0.01", "1000000000", "1000000000.00", "7.5", "1E+3"])
def test_amounts_at_the_limits_are_taken(text: str) -> None:
    """A cent, MAX_AMOUNT itself and up to two decimal places are valid amounts."""
    scenario(Account).given(OPENED).when(lambda a: a.deposit(Decimal(text))).then(
        MoneyDeposited(amount=Decimal(text), currency="EUR")
    )


def test_withdraw_within_the_balance() -> None:
    """A withdrawal up to the balance is allowed."""
    account = (
        scenario(Account)
        .given(*FUNDED)
        .when(lambda a: a.withdraw(Decimal("50.00")))
        .then(MoneyWithdrawn(amount=Decimal("50.00"), currency="EUR"))
    )
    assert account.balance == 0


# --8<-- [start:test_no_overdraft]
def test_no_overdraft() -> None:
    """Withdrawing more than the balance is refused."""
    scenario(Account).given(*FUNDED).when(lambda a: a.withdraw(Decimal("50.01"))).then_raises(
        InsufficientFundsError, match="balance is 50.00"
    )


# --8<-- [end:test_no_overdraft]


def test_frozen_accounts_refuse_money_movements() -> None:
    """A frozen account takes no deposits or withdrawals."""
    frozen = (*FUNDED, AccountFrozen(reason="audit"))
    scenario(Account).given(*frozen).when(lambda a: a.deposit(Decimal(1))).then_raises(
        AccountNotOpenError, match="frozen"
    )
    scenario(Account).given(*frozen).when(lambda a: a.withdraw(Decimal(1))).then_raises(
        AccountNotOpenError
    )


def test_close_only_when_empty() -> None:
    """An account closes only with nothing in it, and then refuses everything."""
    scenario(Account).given(*FUNDED).when(Account.close).then_raises(AccountNotEmptyError)
    scenario(Account).given(OPENED).when(Account.close).then(AccountClosed())
    scenario(Account).given(OPENED, AccountClosed()).when(
        lambda a: a.deposit(Decimal(1))
    ).then_raises(AccountNotOpenError, match="closed")


def test_transfer_debit_is_idempotent() -> None:
    """The source is debited once per transfer, however often the step is delivered."""
    scenario(Account).given(*FUNDED).when(
        lambda a: a.debit_for_transfer(
            "t1", destination="b", amount=Decimal("20.00"), currency="EUR"
        )
    ).then(DEBITED)
    scenario(Account).given(*FUNDED, DEBITED).when(
        lambda a: a.debit_for_transfer(
            "t1", destination="b", amount=Decimal("20.00"), currency="EUR"
        )
    ).then_nothing()


def test_transfer_debit_needs_funds() -> None:
    """A transfer cannot overdraw its source."""
    scenario(Account).given(*FUNDED).when(
        lambda a: a.debit_for_transfer("t1", destination="b", amount=Decimal(99), currency="EUR")
    ).then_raises(InsufficientFundsError)


def test_transfer_credit_is_idempotent_and_checked() -> None:
    """The destination is credited once, only if open and in the transfer's currency."""
    credited = TransferCredited(transfer_id="t1", source="a", amount=Decimal(5), currency="EUR")

    def credit(account: Account) -> None:
        account.credit_from_transfer("t1", source="a", amount=Decimal(5), currency="EUR")

    scenario(Account).given(OPENED).when(credit).then(credited)
    scenario(Account).given(OPENED, credited).when(credit).then_nothing()
    scenario(Account).given(OPENED, AccountClosed()).when(credit).then_raises(AccountNotOpenError)
    scenario(Account).given(AccountOpened(owner="Bo", currency="USD")).when(credit).then_raises(
        CurrencyMismatchError
    )


def test_refund_once_and_only_after_a_debit() -> None:
    """A refund returns what the transfer debited, once; without a debit there is nothing."""
    refunded = TransferRefunded(
        transfer_id="t1", amount=Decimal("20.00"), currency="EUR", reason="closed"
    )
    account = (
        scenario(Account)
        .given(*FUNDED, DEBITED)
        .when(lambda a: a.refund_transfer("t1", reason="closed"))
        .then(refunded)
    )
    assert account.balance == Decimal("50.00")
    scenario(Account).given(*FUNDED, DEBITED, refunded).when(
        lambda a: a.refund_transfer("t1", reason="closed")
    ).then_nothing()
    scenario(Account).given(*FUNDED).when(
        lambda a: a.refund_transfer("t1", reason="closed")
    ).then_nothing()


def test_transfer_request_rules() -> None:
    """A transfer needs two different accounts and a positive amount."""
    scenario(Transfer).when(
        lambda _: Transfer.request(
            "t1", source="a", destination="b", amount=Decimal(3), currency="EUR"
        )
    ).then(TransferRequested(source="a", destination="b", amount=Decimal(3), currency="EUR"))
    scenario(Transfer).when(
        lambda _: Transfer.request(
            "t1", source="a", destination="a", amount=Decimal(3), currency="EUR"
        )
    ).then_raises(SameAccountError)
    scenario(Transfer).when(
        lambda _: Transfer.request(
            "t1", source="a", destination="b", amount=Decimal(0), currency="EUR"
        )
    ).then_raises(NonPositiveAmountError)


def test_transfer_ends_once() -> None:
    """A transfer completes or fails once; later outcomes are ignored."""
    requested = TransferRequested(source="a", destination="b", amount=Decimal(3), currency="EUR")
    scenario(Transfer).given(requested).when(Transfer.complete).then(TransferCompleted())
    scenario(Transfer).given(requested, TransferCompleted()).when(
        lambda t: t.fail("late")
    ).then_nothing()
    scenario(Transfer).given(requested).when(lambda t: t.fail("no")).then(
        TransferFailed(reason="no")
    )
