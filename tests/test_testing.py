"""The given/when/then helper passes what matches and explains what does not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from esframework.testing import scenario
from tests.domain import MoneyAdded, Wallet, WalletOpened

OPENED = WalletOpened(owner="Ada")


def test_then_returns_the_aggregate_after_the_command() -> None:
    """then() checks the emitted events and hands back the changed aggregate."""
    wallet = (
        scenario(Wallet)
        .given(OPENED)
        .when(lambda w: w.add(Decimal(2)))
        .then(MoneyAdded(amount=Decimal(2)))
    )
    assert wallet.balance == Decimal(2)


def test_then_reports_other_events() -> None:
    """A command emitting something else fails with both lists in the message."""
    outcome = scenario(Wallet).given(OPENED).when(lambda w: w.add(Decimal(2)))
    with pytest.raises(AssertionError, match="expected events") as caught:
        outcome.then(MoneyAdded(amount=Decimal(3)))
    assert "amount=Decimal('2')" in str(caught.value)


def test_then_reports_an_unexpected_error() -> None:
    """A command that raised fails then() with the error."""

    def explode(_: Wallet) -> None:
        message = "boom"
        raise RuntimeError(message)

    with pytest.raises(AssertionError, match="boom"):
        scenario(Wallet).given(OPENED).when(explode).then()


def test_then_raises_checks_type_message_and_no_events() -> None:
    """then_raises() passes only for the right error, message and no emitted events."""

    def refuse(_: Wallet) -> None:
        message = "not today"
        raise ValueError(message)

    error = scenario(Wallet).given(OPENED).when(refuse).then_raises(ValueError, match="today")
    assert str(error) == "not today"
    with pytest.raises(AssertionError, match="does not match"):
        scenario(Wallet).given(OPENED).when(refuse).then_raises(ValueError, match="tomorrow")
    with pytest.raises(AssertionError, match="expected KeyError"):
        scenario(Wallet).given(OPENED).when(refuse).then_raises(KeyError)
    with pytest.raises(AssertionError, match="emitted"):
        scenario(Wallet).given(OPENED).when(lambda w: w.add(Decimal(1))).then_raises(ValueError)


def test_creation_commands_return_the_new_aggregate() -> None:
    """A command that creates an aggregate is checked on what it returns."""
    wallet = scenario(Wallet).when(lambda _: Wallet.open("w", "Ada")).then(OPENED)
    assert wallet.owner == "Ada"
