"""Events stored at old schema versions load as the current class through upcaster chains."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from esframework import (
    EventStore,
    NewEvent,
    Repository,
    Serializer,
    Upcasters,
    aggregate,
    applies,
    event,
)
from esframework.errors import (
    CorruptEventError,
    DefinitionError,
    MissingUpcasterError,
    UnknownEventTypeError,
)
from tests.conftest import Backend

chains = Upcasters()


# Version 1 was "Credited" with an integer number of cents; version 2 renamed it to
# "TestFundsAdded" with a decimal amount; version 3 added a currency.
@event(name="TestFundsAdded", version=3)
class FundsAdded:
    amount: Decimal
    currency: str


@chains.register("Credited", from_version=1, rename_to="TestFundsAdded")
def _cents_to_amount(data: dict[str, Any]) -> dict[str, Any]:
    return {"amount": str(Decimal(data["cents"]) / 100)}


@chains.register("TestFundsAdded", from_version=2)
def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


@aggregate(stream_type="TestFunds")
class Funds:
    total: Decimal = Decimal(0)
    currencies: tuple[str, ...] = ()

    @applies(FundsAdded)
    def _on_added(self, e: FundsAdded) -> None:
        self.total += e.amount
        self.currencies = (*self.currencies, e.currency)


def row(event_type: str, version: int, data: dict[str, Any]) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=version,
        data=orjson.dumps(data).decode(),
    )


def test_old_rows_load_through_a_two_step_chain(backend: Backend, store: EventStore) -> None:
    """Rows stored at versions 1 and 2 load as the version-3 class, renamed and filled in."""
    store.append(
        "f",
        "TestFunds",
        [
            row("Credited", 1, {"cents": 1250}),
            row("TestFundsAdded", 2, {"amount": "1.00"}),
            row("TestFundsAdded", 3, {"amount": "2.00", "currency": "USD"}),
        ],
        expected_version=0,
    )
    funds = backend.repository(Funds, serializer=Serializer(upcasters=chains))
    loaded = funds.load("f")
    assert loaded.total == Decimal("15.50")
    assert loaded.currencies == ("EUR", "EUR", "USD")
    history = [e.event for e in funds.history("f")]
    assert history[0] == FundsAdded(amount=Decimal("12.5"), currency="EUR")


def test_missing_link_names_type_and_versions(backend: Backend, store: EventStore) -> None:
    """Without the step from version 2, reading a version-2 row fails naming it."""
    partial = Upcasters()
    partial.register("Credited", from_version=1, rename_to="TestFundsAdded")(_cents_to_amount)
    store.append("f", "TestFunds", [row("Credited", 1, {"cents": 1})], expected_version=0)
    funds = backend.repository(Funds, serializer=Serializer(upcasters=partial))
    with pytest.raises(MissingUpcasterError) as caught:
        funds.load("f")
    message = str(caught.value)
    assert "TestFundsAdded" in message
    assert "from schema version 2 to 3" in message
    assert caught.value.stream_id == "f"


def test_row_newer_than_the_code_is_an_error(backend: Backend, store: EventStore) -> None:
    """A row at a version newer than any registered class fails instead of guessing."""
    store.append("f", "TestFunds", [row("TestFundsAdded", 7, {})], expected_version=0)
    with pytest.raises(MissingUpcasterError, match="newer than the newest registered version 3"):
        backend.repository(Funds).load("f")


def test_unknown_old_type_without_upcaster_is_unknown(backend: Backend, store: EventStore) -> None:
    """A stored type nobody registered, and no upcaster knows, is an UnknownEventTypeError."""
    store.append("f", "TestFunds", [row("Vanished", 1, {})], expected_version=0)
    with pytest.raises(UnknownEventTypeError, match="Vanished"):
        backend.repository(Funds).load("f")


def test_registering_a_step_twice_is_a_definition_error() -> None:
    """Two upcasters from the same type and version cannot both apply."""
    with pytest.raises(DefinitionError, match="already registered"):
        chains.register("Credited", from_version=1)(_cents_to_amount)


def test_an_upcaster_that_raises_is_a_corrupt_event_naming_the_row(
    backend: Backend, store: EventStore
) -> None:
    """An upcaster's KeyError on an odd old row becomes a CorruptEventError that names the
    stream, version, position and stored type, keeping the KeyError as its cause."""
    store.append(
        "f",
        "TestFunds",
        [row("Credited", 1, {"cents": 100}), row("Credited", 1, {"euros": 1})],
        expected_version=0,
    )
    position = store.read_all()[-1].position
    funds = backend.repository(Funds, serializer=Serializer(upcasters=chains))
    for read in (lambda: funds.load("f"), lambda: list(funds.history("f"))):
        with pytest.raises(CorruptEventError) as caught:
            read()
        error = caught.value
        assert (error.stream_id, error.version, error.position) == ("f", 2, position)
        assert error.event_type == "Credited"
        assert isinstance(error.__cause__, KeyError)
        assert "_cents_to_amount" in str(error)
        assert "'cents'" in str(error)


def test_an_upcaster_returning_no_dict_is_a_corrupt_event(store: EventStore) -> None:
    """An upcaster must return the next version's data as a dict."""
    broken = Upcasters()
    broken.register("Credited", from_version=1, rename_to="TestFundsAdded")(lambda _: None)  # type: ignore[arg-type,return-value]
    store.append("f", "TestFunds", [row("Credited", 1, {"cents": 1})], expected_version=0)
    with pytest.raises(CorruptEventError, match="returned a NoneType"):
        Repository(Funds, store=store, serializer=Serializer(upcasters=broken)).load("f")
