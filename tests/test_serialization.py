"""Events round-trip exactly through cattrs and orjson, and bad data fails clearly."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import cattrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esframework import Metadata, Serializer, StoredEvent, event
from esframework.errors import CorruptEventError, EventEncodingError, UnknownEventTypeError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Address:
    street: str
    number: int


@attrs.frozen
class Place:  # only the global-converter test registers hooks for it
    city: str


@event(name="TestEverything")
class Everything:
    text: str
    whole: int
    flag: bool
    ratio: float
    amount: Decimal
    at: datetime
    day: date
    ident: uuid.UUID
    colour: Colour
    pair: tuple[int, str]
    items: list[int]
    mapping: dict[str, Any]
    maybe: str | None
    either: int | str
    nested: Address
    nested_list: list[Address]


serializer = Serializer()

decimals = st.decimals(allow_nan=False, allow_infinity=False)
texts = st.text(  # NUL and lone surrogates are refused (PostgreSQL, UTF-8)
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
)
aware = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
addresses = st.builds(Address, street=texts, number=st.integers())
everything = st.builds(
    Everything,
    text=texts,
    whole=st.integers(min_value=-(2**200), max_value=2**200),
    flag=st.booleans(),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    amount=decimals,
    at=aware,
    day=st.dates(),
    ident=st.uuids(),
    colour=st.sampled_from(Colour),
    pair=st.tuples(st.integers(-(2**70), 2**70), texts),
    items=st.lists(st.integers(-(2**70), 2**70)),
    mapping=st.dictionaries(texts, json_values, max_size=4),
    maybe=st.none() | texts,
    either=st.integers(-(2**63), 2**63 - 1) | texts,
    nested=addresses,
    nested_list=st.lists(addresses, max_size=3),
)


def stored(
    data: str, *, event_type: str = "TestEverything", version: int = 1, metadata: str = "{}"
) -> StoredEvent:
    return StoredEvent(
        event_id=uuid.uuid4(),
        stream_id="stream-1",
        stream_type="S",
        event_type=event_type,
        schema_version=version,
        data=data,
        metadata=metadata,
        version=3,
        position=42,
        recorded_at=datetime.now(UTC),
    )


def round_trip(value: object) -> object:
    record = serializer.encode(value, event_id=uuid.uuid4())
    return serializer.decode_event(stored(record.data, event_type=record.event_type))


@given(everything)
def test_every_supported_field_type_round_trips_exactly(value: Everything) -> None:
    """Every supported field type reads back equal, with the same types."""
    back = round_trip(value)
    assert back == value
    assert isinstance(back, Everything)
    assert type(back.amount) is Decimal
    assert back.amount.as_tuple() == value.amount.as_tuple()  # no precision lost
    assert back.at.utcoffset() == value.at.utcoffset()


def test_hooks_on_cattrs_global_converter_change_nothing_stored() -> None:
    """The codec's cattrs converter is its own: an application's global hooks do not leak in."""

    @event(name="TestPlaced")
    class Placed:
        place: Place

    cattrs.register_unstructure_hook(Place, lambda _: "overridden")
    cattrs.register_structure_hook(Place, lambda *_: Place(city="overridden"))
    value = Placed(place=Place(city="Lyon"))
    record = serializer.encode(value, event_id=uuid.uuid4())
    assert orjson.loads(record.data) == {"place": {"city": "Lyon"}}
    assert serializer.decode_event(stored(record.data, event_type=record.event_type)) == value


def test_decimals_keep_their_exact_digits() -> None:
    """Decimals are stored as strings: 0.1 + 0.2 stays 0.3 and trailing zeros stay."""

    @event(name="TestPrecise")
    class Precise:
        amount: Decimal

    for text in ["0.30", "12345678901234567890.123456789", "-0.000001", "1E+30"]:
        back = round_trip(Precise(amount=Decimal(text)))
        assert isinstance(back, Precise)
        assert str(back.amount) == text


def test_integers_beyond_64_bits_round_trip() -> None:
    """Integers that orjson cannot write natively still round-trip."""

    @event(name="TestHuge")
    class Huge:
        value: int

    for value in [2**64, -(2**63) - 1, 10**40, 2**64 - 1, -(2**63)]:
        assert round_trip(Huge(value=value)) == Huge(value=value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_rejected_before_writing(value: float) -> None:
    """NaN and infinities cannot be stored faithfully: encoding fails clearly."""

    @event(name=f"TestFloat{id(value)}")
    class Measured:
        value: float

    with pytest.raises(EventEncodingError, match="not a finite number"):
        serializer.encode(Measured(value=value), event_id=uuid.uuid4())


def test_payload_that_looks_like_markers_reads_back_as_itself() -> None:
    """Data is decoded by declared types, never by guessing from its shape."""

    @event(name="TestMarkerLike")
    class Carrier:
        payload: dict[str, Any]

    marker = {"_type_": "decimal", "_data_": "1.5", "__class__": "datetime"}
    back = round_trip(Carrier(payload=marker))
    assert isinstance(back, Carrier)
    assert back.payload == marker


def test_unknown_event_type_names_type_stream_and_position() -> None:
    """Reading an unregistered type fails naming the type, stream, version and position."""
    with pytest.raises(UnknownEventTypeError) as caught:
        serializer.decode(stored("{}", event_type="NobodyRegisteredThis"))
    error = caught.value
    assert (error.event_type, error.stream_id, error.version, error.position) == (
        "NobodyRegisteredThis",
        "stream-1",
        3,
        42,
    )
    assert "NobodyRegisteredThis" in str(error)
    assert "stream-1" in str(error)
    assert "42" in str(error)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not json", "the payload is not valid JSON"),
        ('{"owner": "x"', "the payload is not valid JSON"),
        ("[1, 2]", "the payload does not fit"),
        ('{"owner": 5}', "the payload does not fit: field 'owner'"),
        ("{}", "the payload does not fit"),
        ('{"owner": "x", "amount": "abc"}', "the payload does not fit: field 'amount'"),
    ],
)
def test_corrupt_payloads_fail_clearly(data: str, reason: str) -> None:
    """Invalid JSON, or JSON that does not fit the class, is a CorruptEventError saying which."""

    @event(name=f"TestStrict{abs(hash(data))}")
    class Strict:
        owner: str
        amount: Decimal = Decimal(0)

    with pytest.raises(CorruptEventError) as caught:
        serializer.decode(stored(data, event_type=f"TestStrict{abs(hash(data))}"))
    assert caught.value.position == 42
    assert reason in str(caught.value)


def test_corrupt_metadata_fails_clearly() -> None:
    """Metadata that is not a JSON object is a CorruptEventError too."""
    with pytest.raises(CorruptEventError, match="metadata"):
        serializer.decode(stored('{"payload": {}}', event_type="TestMarkerLike", metadata="[1]"))


def test_metadata_round_trips_with_correlation_and_causation() -> None:
    """Correlation and causation ids are first-class; other facts ride along."""

    @event(name="TestNoted")
    class Noted:
        text: str

    metadata = Metadata(
        correlation_id=uuid.uuid4(), causation_id=uuid.uuid4(), extra={"user": "ada"}
    )
    record = serializer.encode(Noted(text="x"), event_id=uuid.uuid4(), metadata=metadata)
    assert orjson.loads(record.metadata)["user"] == "ada"
    envelope = serializer.decode(
        stored(record.data, event_type="TestNoted", metadata=record.metadata)
    )
    assert envelope.metadata == metadata
    assert envelope.event == Noted(text="x")
    assert (envelope.stream_id, envelope.version, envelope.position) == ("stream-1", 3, 42)


def test_caused_by_continues_the_correlation() -> None:
    """Metadata.caused_by links a new event to the one that caused it."""
    cause = serializer.decode(
        stored(
            '{"text": "x"}',
            event_type="TestNoted",
            metadata=orjson.dumps({"correlation_id": str(uuid.UUID(int=7))}).decode(),
        )
    )
    follow_up = Metadata.caused_by(cause, user="ada")
    assert follow_up.correlation_id == uuid.UUID(int=7)
    assert follow_up.causation_id == cause.event_id
    assert follow_up.extra == {"user": "ada"}


def test_metadata_cannot_shadow_its_own_fields() -> None:
    """Extra metadata named like correlation or causation ids is refused before writing."""

    @event(name="TestShadowed")
    class Shadowed:
        text: str

    with pytest.raises(EventEncodingError, match="correlation_id"):
        serializer.encode(
            Shadowed(text="x"),
            event_id=uuid.uuid4(),
            metadata=Metadata(extra={"correlation_id": "req-42"}),
        )
    with pytest.raises(EventEncodingError, match="only JSON values"):
        serializer.encode(
            Shadowed(text="x"), event_id=uuid.uuid4(), metadata=Metadata(extra={"d": object()})
        )


def test_nul_characters_are_refused_before_writing() -> None:
    """PostgreSQL cannot store NUL in text: every store refuses it the same way, up front."""

    @event(name="TestNul")
    class WithNul:
        text: str

    with pytest.raises(EventEncodingError, match="NUL"):
        serializer.encode(WithNul(text="a\x00b"), event_id=uuid.uuid4())


@pytest.mark.parametrize("text", ["\\u0000", "C:\\u0000\\x", "\\\\u0000"])
def test_a_backslash_before_u0000_is_text_not_a_nul(text: str) -> None:
    """The NUL check reads JSON escapes: a backslash followed by "u0000" is stored as text."""

    @event(name="TestNotNul")
    class Path:
        text: str

    record = serializer.encode(Path(text=text), event_id=uuid.uuid4())
    loaded = serializer.decode_event(stored(record.data, event_type="TestNotNul"))
    assert loaded == Path(text=text)
    with pytest.raises(EventEncodingError, match="NUL"):
        serializer.encode(Path(text=text + "\x00"), event_id=uuid.uuid4())
