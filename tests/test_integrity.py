"""Nothing is stored that cannot be read back: one regression test per case of issue 9.

Each runs on every store (memory, SQLite, PostgreSQL; sync and async).
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from esframework import (
    AggregateNotFoundError,
    AsyncRepository,
    Metadata,
    aggregate,
    aggregate_version,
    applies,
    emit,
    event,
    new,
)
from esframework._aggregates import aggregate_type
from esframework.errors import EventEncodingError, UnsupportedFieldTypeError
from esframework.testing import (
    assert_snapshot_matches_replay,
    assert_snapshot_matches_replay_async,
)
from tests.conftest import Backend


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Shape(enum.Enum):
    ROUND = "round"
    SQUARE = "square"


class Permission(enum.IntFlag):
    READ = 1
    WRITE = 2


@attrs.frozen
class Line:
    sku: str
    quantity: int


@event(name="IntegrityRecorded")
class Recorded:
    text: str = ""
    whole: int = 0
    flag: bool = False
    ident: uuid.UUID = uuid.UUID(int=0)
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    lines: list[Line] = attrs.Factory(list)
    colour: Colour = Colour.RED
    level: Level = Level.LOW
    shape: Shape = Shape.ROUND
    permission: Permission = Permission.READ
    payload: dict[str, Any] = attrs.Factory(dict)
    amount: Decimal = Decimal(0)
    counts: dict[int, str] = attrs.Factory(dict)


@aggregate(stream_type="IntegrityLedger")
class Ledger:
    last: Recorded | None = None
    seen: int = 0
    colours: set[Colour] = attrs.Factory(set)
    by_level: dict[Level, int] = attrs.Factory(dict)
    by_day: dict[date, list[int]] = attrs.Factory(dict)
    counts: dict[int, str] = attrs.Factory(dict)
    derived: str = attrs.field(default="", init=False)  # set by handlers only

    def record(self, recorded: Recorded) -> None:
        emit(self, recorded)

    @applies(Recorded)
    def _on_recorded(self, e: Recorded) -> None:
        self.last = e
        self.seen += 1
        self.colours.add(e.colour)
        self.by_level[e.level] = self.by_level.get(e.level, 0) + 1
        self.by_day.setdefault(e.at.date(), []).append(self.seen)
        self.counts.update(e.counts)
        self.derived = f"{e.text}:{self.seen}"


@aggregate(stream_type="IntegrityInbox")
class Inbox:
    """Keeps whatever it is given, so that the save is what checks the values."""

    last: Recorded | None = None

    def record(self, recorded: Recorded) -> None:
        emit(self, recorded)

    @applies(Recorded)
    def _on_recorded(self, e: Recorded) -> None:
        self.last = e


def saved(
    backend: Backend, *events: Recorded, stream: str = "ledger-1", cls: type[Any] = Ledger
) -> Any:
    repository = backend.repository(cls)
    ledger = new(cls, stream)
    for e in events:
        ledger.record(e)
    repository.save(ledger)
    return repository


def check_snapshot(backend: Backend, stream: str = "ledger-1") -> Ledger:
    if backend.loop is None:
        return assert_snapshot_matches_replay(backend.repository(Ledger), stream)
    repository = AsyncRepository(Ledger, store=backend.raw)
    return backend.loop.run(assert_snapshot_matches_replay_async(repository, stream))


def assert_refused(backend: Backend, bad: Recorded, field: str) -> EventEncodingError:
    """Saving `bad` after one good event raises and leaves the stream at version 1."""
    repository = saved(backend, Recorded(text="good"), cls=Inbox)
    ledger = repository.load("ledger-1")
    ledger.record(bad)
    with pytest.raises(EventEncodingError) as caught:
        repository.save(ledger)
    assert caught.value.event_type == "IntegrityRecorded"
    assert caught.value.field == field
    assert "IntegrityRecorded" in str(caught.value)
    assert field in str(caught.value)
    assert aggregate_version(repository.load("ledger-1")) == 1
    assert len(list(repository.history("ledger-1"))) == 1
    return caught.value


# Case 1: the encoder checks what the decoder checks.


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (Recorded(text=5), "text"),  # type: ignore[arg-type]  # an int from a JSON body
        (Recorded(whole=True), "whole"),
        (Recorded(flag=1), "flag"),  # type: ignore[arg-type]
        (Recorded(ident="abc"), "ident"),  # type: ignore[arg-type]
        (Recorded(at="2026-01-01T00:00:00"), "at"),  # type: ignore[arg-type]
        (Recorded(lines=[Line(sku="a", quantity=1), Line(sku=2, quantity=1)]), "lines[1].sku"),  # type: ignore[arg-type]
        (Recorded(lines=(Line(sku="a", quantity=1),)), "lines"),  # type: ignore[arg-type]  # a tuple loads as a list
        (Recorded(colour="red"), "colour"),  # type: ignore[arg-type]
        (Recorded(amount=5), "amount"),  # type: ignore[arg-type]
        (Recorded(counts={"1": "a"}), "counts['1']"),  # type: ignore[dict-item]
    ],
)
def test_wrongly_typed_values_are_refused_before_writing(
    backend: Backend, bad: Recorded, field: str
) -> None:
    """A value of another type than its field's is refused naming the field; nothing is written."""
    error = assert_refused(backend, bad, field)
    assert "expected" in error.reason


def test_a_refused_first_event_leaves_no_stream(backend: Backend) -> None:
    """A new aggregate whose first event is refused leaves no stream behind."""
    repository = backend.repository(Inbox)
    ledger = new(Inbox, "ledger-new")
    ledger.record(Recorded(text="ok"))
    ledger.record(Recorded(whole="7"))  # type: ignore[arg-type]
    with pytest.raises(EventEncodingError, match="whole"):
        repository.save(ledger)
    with pytest.raises(AggregateNotFoundError):
        repository.load("ledger-new")


@attrs.frozen
class Card:
    number: str


@attrs.frozen
class Cash:
    number: str


def test_ambiguous_or_unsupported_field_types_fail_when_the_class_is_defined() -> None:
    """An event or aggregate whose fields could not be read back fails at definition."""
    with pytest.raises(UnsupportedFieldTypeError) as caught:

        @event(name="IntegrityPaid")
        class Paid:
            means: Card | Cash

    assert caught.value.class_name.endswith("Paid")
    assert caught.value.field == "means"
    assert "Card and Cash" in str(caught.value)
    with pytest.raises(
        UnsupportedFieldTypeError, match=r"'ref' of .*Odd cannot be stored.*str and uuid"
    ):

        @event(name="IntegrityOdd")
        class Odd:
            ref: str | uuid.UUID

    with pytest.raises(
        UnsupportedFieldTypeError, match=r"'spans\[\]' of .*Timed cannot be stored.*complex"
    ):

        @aggregate
        class Timed:
            spans: list[complex] = attrs.Factory(list)


# Case 2: enums of every kind decode as their enum, in events and in snapshots.


def test_enums_load_as_their_enum_in_events_and_snapshots(backend: Backend) -> None:
    """StrEnum, IntEnum, Enum and IntFlag values come back as members, not str or int."""
    recorded = Recorded(
        colour=Colour.BLUE,
        level=Level.HIGH,
        shape=Shape.SQUARE,
        permission=Permission.READ | Permission.WRITE,
    )
    repository = saved(backend, recorded)
    [envelope] = list(repository.history("ledger-1"))
    loaded = envelope.event
    assert loaded == recorded
    assert type(loaded.colour) is Colour
    assert type(loaded.level) is Level
    assert type(loaded.shape) is Shape
    assert type(loaded.permission) is Permission
    ledger = check_snapshot(backend)
    assert ledger.colours == {Colour.BLUE}
    assert ledger.by_level == {Level.HIGH: 1}


# Case 4: big ints in Any, NaN in metadata, non-finite Decimals, deep nesting, time zones.


def test_big_ints_inside_any_values_load_as_ints(backend: Backend) -> None:
    """An int beyond 64 bits in a dict[str, Any] loads back as that int, on every store."""
    payload = {"big": 10**30, "negative": -(2**70), "nested": [2**64, {"x": 10**40}]}
    repository = saved(backend, Recorded(payload=payload, whole=-(10**25)))
    [envelope] = list(repository.history("ledger-1"))
    assert envelope.event.payload == payload
    assert type(envelope.event.payload["big"]) is int
    assert envelope.event.whole == -(10**25)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_metadata_is_refused_like_event_data(backend: Backend, value: float) -> None:
    """NaN and infinities in metadata extra are refused, not stored as null."""
    repository = saved(backend, Recorded(text="good"))
    ledger = repository.load("ledger-1")
    ledger.record(Recorded())
    with pytest.raises(EventEncodingError) as caught:
        repository.save(ledger, metadata=Metadata(extra={"score": value}))
    assert caught.value.field == "metadata.extra['score']"
    assert aggregate_version(repository.load("ledger-1")) == 1


@pytest.mark.parametrize("text", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_decimals_are_refused(backend: Backend, text: str) -> None:
    """Decimal NaN, sNaN and infinities raise EventEncodingError, never InvalidOperation."""
    assert_refused(backend, Recorded(amount=Decimal(text)), "amount")


def test_deep_nesting_is_refused_not_a_recursion_error(backend: Backend) -> None:
    """A value nested 500 levels deep is an EventEncodingError, and nothing is written."""
    deep: Any = "leaf"
    for _ in range(500):
        deep = [deep]
    error = assert_refused(
        backend, Recorded(payload={"deep": deep}), "payload['deep']" + "[0]" * 100
    )
    assert "levels deep" in error.reason


def test_zone_aware_datetimes_keep_their_zone(backend: Backend) -> None:
    """A zoneinfo datetime loads back in its zone, in events and in snapshots."""
    paris = ZoneInfo("Europe/Paris")
    # 02:30 on 2026-10-25 happens twice in Paris: fold=1 is the second, after the clocks go back.
    at = datetime(2026, 10, 25, 2, 30, tzinfo=paris, fold=1)
    repository = saved(backend, Recorded(at=at))
    [envelope] = list(repository.history("ledger-1"))
    loaded = envelope.event.at
    assert loaded.tzinfo is paris
    assert (loaded, loaded.fold, loaded.utcoffset()) == (at, 1, at.utcoffset())
    ledger = check_snapshot(backend)
    assert ledger.last is not None
    assert ledger.last.at.tzinfo is paris


# Case 5: snapshots restore exactly what a replay gives.


def test_snapshots_restore_init_false_and_non_str_keyed_state(backend: Backend) -> None:
    """init=False fields and dict[int | enum | date, ...] state survive a snapshot."""
    saved(
        backend,
        Recorded(text="a", counts={1: "one", -(2**70): "huge"}, level=Level.HIGH),
        Recorded(text="b", at=datetime(2026, 5, 1, 12, tzinfo=ZoneInfo("Asia/Tokyo"))),
    )
    ledger = check_snapshot(backend)
    assert ledger.derived == "b:2"
    assert ledger.counts == {1: "one", -(2**70): "huge"}
    assert ledger.by_day == {date(2026, 1, 1): [1], date(2026, 5, 1): [2]}


@event(name="IntegrityItemAdded")
class ItemAdded:
    name: str


def basket_class(*, with_note: bool) -> type[Any]:
    """Define the same Basket aggregate again, its nested Item class with or without a note.

    Built from type objects, not annotation strings: the classes are local to this function.
    """
    fields: dict[str, Any] = {"name": attrs.field(type=str)}
    if with_note:
        fields["note"] = attrs.field(type=str, default="added later")
    item = attrs.make_class("Item", fields)

    def on_added(self: Any, e: ItemAdded) -> None:
        self.items.append(item(name=e.name))

    namespace = {
        "__annotations__": {"items": list[item]},
        "__module__": __name__,
        "items": attrs.Factory(list),
        "_on_added": applies(ItemAdded)(on_added),
    }
    return aggregate(stream_type="IntegrityBasket")(type("Basket", (), namespace))


def test_the_fingerprint_covers_nested_classes() -> None:
    """A nested attrs class changing shape changes the aggregate's state fingerprint."""
    before, after = basket_class(with_note=False), basket_class(with_note=True)
    assert aggregate_type(before).state_schema != aggregate_type(after).state_schema
    again = basket_class(with_note=False)
    assert aggregate_type(before).state_schema == aggregate_type(again).state_schema


def test_a_snapshot_of_an_older_nested_shape_is_ignored(backend: Backend) -> None:
    """After a nested class gains a field, loads replay instead of using the old snapshot."""
    old, current = basket_class(with_note=False), basket_class(with_note=True)
    basket = new(old, "basket-1")
    emit(basket, ItemAdded(name="tea"))
    backend.repository(old).save(basket, snapshot=True)
    loaded = backend.repository(current).load("basket-1")
    assert [(i.name, i.note) for i in loaded.items] == [("tea", "added later")]
