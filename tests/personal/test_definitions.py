"""Declaring personal fields: checked when the class is defined or first encoded."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esframework import Serializer, aggregate, event, personal
from esframework._personal._sealing import new_key
from esframework.errors import (
    DefinitionError,
    EventEncodingError,
    InvalidSubjectError,
    PersonalDataError,
)


def test_the_subject_field_must_exist() -> None:
    with pytest.raises(DefinitionError, match="'owner_id', which Bad does not have"):

        @event(name="test.Bad")
        class Bad:
            email: str = personal(subject="owner_id", forgotten="")


def test_the_subject_field_cannot_be_personal_itself() -> None:
    with pytest.raises(DefinitionError, match="is personal data itself"):

        @aggregate
        class Bad:
            a: str = personal(subject="b", forgotten="", default="")
            b: str = personal(subject="a", forgotten="", default="")


@event(name="test.WrongPlaceholder")
class WrongPlaceholder:
    customer_id: str
    age: int = personal(subject="customer_id", forgotten="unknown")  # type: ignore[assignment]


def test_a_placeholder_not_of_the_field_type_is_refused_before_writing() -> None:
    """The placeholder must read back as the field's type, like any stored value."""
    with pytest.raises(EventEncodingError, match="age"):
        Serializer().encode(
            WrongPlaceholder(customer_id="c", age=3),
            event_id=uuid.uuid4(),
            keys={"c": new_key()},
        )


@event(name="test.Contact")
class Contact:
    customer_id: str
    email: str = personal(subject="customer_id", forgotten="")


def test_encoding_personal_data_without_keys_is_refused() -> None:
    with pytest.raises(PersonalDataError, match="needs its subjects' keys"):
        Serializer().encode(Contact(customer_id="c", email="e"), event_id=uuid.uuid4())


def test_a_subject_field_must_hold_a_subject_id() -> None:
    with pytest.raises(InvalidSubjectError):
        Serializer().personal_subjects(Contact(customer_id="", email="e"))


def test_without_keys_sealed_fields_read_as_forgotten() -> None:
    serializer = Serializer()
    record = serializer.encode(
        Contact(customer_id="c", email="e@x"), event_id=uuid.uuid4(), keys={"c": new_key()}
    )
    payload: Any = type("P", (), {})  # a stand-in record with the fields decode_event reads
    payload.data, payload.event_type, payload.schema_version = record.data, "test.Contact", 1
    payload.stream_id, payload.version, payload.position = "s", 1, 1
    assert serializer.decode_event(payload) == Contact(customer_id="c", email="")


@event(name="test.Anything")
class Anything:
    subject: int
    value: Any = personal(subject="subject", forgotten=None)
    amount: Decimal = personal(subject="subject", forgotten=Decimal(0))
    names: tuple[str, ...] = personal(subject="subject", forgotten=())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0")),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5).filter(lambda k: "\0" not in k), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    subject=st.integers(min_value=-(2**63), max_value=2**63),
    value=json_values,
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=4),
    names=st.lists(st.text(max_size=10).filter(lambda t: "\0" not in t), max_size=4),
)
def test_sealed_fields_read_back_equal(
    subject: int, value: Any, amount: Decimal, names: list[str]
) -> None:
    """What a save accepts, a load gives back equal; forgotten, the placeholders."""
    serializer = Serializer()
    original = Anything(subject=subject, value=value, amount=amount, names=tuple(names))
    keys = {str(subject): new_key()}
    record = serializer.encode(original, event_id=uuid.uuid4(), keys=keys)
    stored: Any = type("P", (), {})
    stored.data, stored.event_type, stored.schema_version = record.data, "test.Anything", 1
    stored.stream_id, stored.version, stored.position = "s", 1, 1
    assert serializer.decode_event(stored, keys) == original
    forgotten = serializer.decode_event(stored, {str(subject): None})
    assert forgotten == Anything(subject=subject, value=None, amount=Decimal(0), names=())


_WITHOUT_CRYPTOGRAPHY = """
import sys
from importlib.abc import MetaPathFinder


class NoCryptography(MetaPathFinder):
    # As if the `personal` extra were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "cryptography":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoCryptography())

from esframework import InMemoryEventStore, Repository, emit, new
from esframework.errors import PersonalDataError
from tests.personal.domain import Customer
from tests.domain import Wallet

store = InMemoryEventStore()
Repository(Wallet, store=store).save(Wallet.open("w", "ada"))  # no personal data: fine
customer = Customer.register("c-1", "ada@example.com")
try:
    Repository(Customer, store=store).save(customer)
except PersonalDataError as error:
    assert "install esframework[personal]" in str(error), error
else:
    raise AssertionError("personal data was saved without cryptography")
assert store.stream_version("c-1") == 0
assert store.personal_data_keys(["c-1"]) == {}  # no key was made either
assert "cryptography" not in sys.modules
"""


def test_personal_data_needs_cryptography_and_nothing_else_does() -> None:
    """Without the extra, events without personal fields save; those with them are refused
    with a clear error, before anything (a key included) is stored."""
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CRYPTOGRAPHY],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
