"""Aggregates apply what they emit, track identity and version, and fail loudly."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from esframework import (
    aggregate,
    aggregate_id,
    aggregate_version,
    applies,
    emit,
    event,
    new,
    pending_events,
)
from esframework.errors import (
    DefinitionError,
    DuplicateEventTypeError,
    InvalidStreamIdError,
    MissingHandlerError,
)
from tests.domain import MoneyAdded, Wallet, WalletOpened, WalletRenamed


def test_emit_applies_at_once_and_queues_for_saving() -> None:
    """Emitting changes the state immediately and adds the event to the pending list."""
    wallet = Wallet.open("w-1", "Ada")
    wallet.add(Decimal("2.50"), "pocket money")
    assert (wallet.owner, wallet.balance) == ("Ada", Decimal("2.50"))
    assert aggregate_id(wallet) == "w-1"
    assert aggregate_version(wallet) == 2
    assert [p.event for p in pending_events(wallet)] == [
        WalletOpened(owner="Ada"),
        MoneyAdded(amount=Decimal("2.50"), note="pocket money"),
    ]
    ids = {p.event_id for p in pending_events(wallet)}
    assert len(ids) == 2


def test_event_without_handler_is_an_error_and_changes_nothing() -> None:
    """An emitted event with no @applies handler fails instead of being ignored."""
    wallet = Wallet.open("w-1", "Ada")
    with pytest.raises(MissingHandlerError) as caught:
        emit(wallet, WalletRenamed(owner="Bob"))
    assert "Wallet" in str(caught.value)
    assert "WalletRenamed" in str(caught.value)
    assert aggregate_version(wallet) == 1
    assert len(pending_events(wallet)) == 1


def test_events_are_frozen_slotted_and_keyword_only() -> None:
    """@event makes frozen, slotted, keyword-only attrs classes."""
    added = MoneyAdded(amount=Decimal(1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        added.amount = Decimal(2)  # type: ignore[misc]
    assert not hasattr(added, "__dict__")
    with pytest.raises(TypeError):
        MoneyAdded(Decimal(1))  # type: ignore[misc]


def test_two_classes_under_one_name_and_version_is_a_definition_error() -> None:
    """Registering another class under a taken name and version fails at definition time."""
    with pytest.raises(DuplicateEventTypeError) as caught:

        @event(name="TestMoneyAdded")
        class Impostor:
            amount: Decimal

    assert (caught.value.name, caught.value.version) == ("TestMoneyAdded", 1)

    @event(name="TestVersioned")
    class VersionedV1:
        amount: Decimal

    @event(name="TestVersioned", version=2)  # a new version of the same type is fine
    class VersionedV2:
        amount: Decimal


def test_event_name_defaults_to_class_name() -> None:
    """Without a name, an event is stored under its class name, at version 1."""
    from esframework import event_type_of

    @event
    class TestDefaultNamed:
        value: int

    kind = event_type_of(TestDefaultNamed)
    assert (kind.name, kind.version) == ("TestDefaultNamed", 1)


def test_aggregate_fields_need_defaults() -> None:
    """An aggregate starts blank, so a field without a default is a definition error."""
    with pytest.raises(DefinitionError, match="'owner'"):

        @aggregate
        class NoDefault:
            owner: str


def test_handlers_must_name_event_classes() -> None:
    """@applies on a class that is not an event fails at definition time."""

    class NotAnEvent:
        pass

    with pytest.raises(TypeError, match="not an event class"):

        @aggregate
        class Broken:
            @applies(NotAnEvent)
            def _on(self, e: NotAnEvent) -> None:
                pass


@pytest.mark.parametrize("bad", ["", "x" * 256])
def test_new_rejects_invalid_ids(bad: str) -> None:
    """Empty or over-long ids are rejected when the aggregate is created."""
    with pytest.raises(InvalidStreamIdError):
        new(Wallet, bad)


def test_emit_on_an_untracked_instance_explains_itself() -> None:
    """Emitting on an instance made without new() or a repository says how to make one."""
    with pytest.raises(TypeError, match=r"esframework\.new"):
        Wallet().add(Decimal(1))


def test_subclass_aggregates_inherit_handlers() -> None:
    """A subclass aggregate applies the events its base class handles."""
    from tests.domain import SnapshottedWallet

    wallet = SnapshottedWallet.open("w", "Ada")
    wallet.add(Decimal(3))
    assert wallet.balance == Decimal(3)
