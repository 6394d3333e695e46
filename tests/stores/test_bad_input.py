"""Bad input to the stores: a framework error naming what is wrong, and nothing written.

Each case runs on every backend: they must all refuse the same input with the same error,
before anything is stored (an append-only store can never drop an event it cannot read).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from esframework import (
    AppendCondition,
    EventStore,
    ExpectedVersion,
    NewEvent,
    Query,
    QueryItem,
    aggregate,
    applies,
    emit,
    new,
)
from esframework import event as event_class
from esframework.errors import (
    ConcurrencyError,
    EsframeworkError,
    EventEncodingError,
    InvalidEventIdError,
    InvalidPositionError,
    InvalidStreamIdError,
    InvalidTypeNameError,
    InvalidVersionError,
    StoreError,
)
from tests.conftest import Backend
from tests.domain import Wallet


def event(**fields: Any) -> NewEvent:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "event_type": "Happened",
        "schema_version": 1,
        "data": '{"n": 1}',
    }
    values.update(fields)
    return NewEvent(**values)


@pytest.mark.parametrize(
    ("stream_id", "reason"),
    [
        ("lone\udcffsurrogate", "not valid UTF-8"),
        (5, "not a string"),
        (None, "not a string"),
        (b"bytes", "not a string"),
    ],
)
def test_stream_ids_no_store_can_keep_are_refused(
    store: EventStore, stream_id: Any, reason: str
) -> None:
    """A stream id that is not text every store can encode is an InvalidStreamIdError.

    A lone surrogate was stored by the memory store and broke the SQLite and PostgreSQL
    drivers with a UnicodeEncodeError; a non-str id raised a TypeError from inside.
    """
    with pytest.raises(InvalidStreamIdError, match=reason):
        store.append(stream_id, "S", [event()], expected_version=0)
    assert store.head() == 0


def test_loads_of_a_stream_id_no_store_can_keep_are_refused(backend: Backend) -> None:
    """A load names the bad id as a save does (it was a UnicodeEncodeError on SQLite and
    PostgreSQL, and "not found" in memory)."""
    with pytest.raises(InvalidStreamIdError, match="not valid UTF-8"):
        backend.repository(Wallet).load("lone\udcffsurrogate")


@pytest.mark.parametrize("event_id", ["not-a-uuid", str(uuid.uuid4()), 42])
def test_an_event_id_that_is_not_a_uuid_is_refused(store: EventStore, event_id: Any) -> None:
    """An event id must be a UUID: SQLite stored any value, and every read of the store's
    global order failed on that event from then on ("badly formed hexadecimal UUID")."""
    good = event()
    with pytest.raises(EventEncodingError, match="not a UUID") as raised:
        store.append("s-1", "S", [good, event(event_id=event_id)], expected_version=0)
    assert "s-1" in str(raised.value)
    assert store.head() == 0
    assert list(store.read_all()) == []


@pytest.mark.parametrize("after", [-1, 2**63, "3", 1.5, True])
def test_an_append_condition_after_no_position_can_be_is_refused(after: Any) -> None:
    """`after` is a position (from 0) or None: -1 passed as "after 0" on every store, a
    huge one overflowed SQLite's INTEGER, a str failed in the memory store only."""
    with pytest.raises(InvalidPositionError, match="after"):
        AppendCondition(Query.of(QueryItem(tags=["a"])), after=after)


@pytest.mark.parametrize("after", [0, 5, 2**63 - 1, None])
def test_append_conditions_take_every_position(after: int | None) -> None:
    assert AppendCondition(Query.all(), after=after).after == after


@pytest.mark.parametrize("seen", [["3f1c"], [1], [None], [uuid.uuid4(), b"id"]], ids=repr)
def test_an_append_condition_seeing_what_is_no_event_id_is_refused(seen: list[Any]) -> None:
    with pytest.raises(InvalidEventIdError, match=r"AppendCondition\.seen"):
        AppendCondition(Query.all(), after=0, seen=seen)


def refused_before_writing(store: EventStore, call: Any) -> EsframeworkError:
    """Run `call`; it must raise a framework error of the caller's (not the backend's), and
    the store must hold nothing."""
    with pytest.raises(EsframeworkError) as raised:
        call()
    assert not isinstance(raised.value, StoreError), raised.value
    assert store.head() == 0
    return raised.value


@pytest.mark.parametrize(
    ("stream_type", "event_type"),
    [("S\x00", "E"), ("S", "E\x00"), ("S\udcff", "E"), ("S", "E\udcff"), ("", "E"), (7, "E")],
)
def test_type_names_no_store_can_keep_are_refused(
    store: EventStore, stream_type: Any, event_type: Any
) -> None:
    error = refused_before_writing(
        store,
        lambda: store.append(
            "s-1", stream_type, [event(event_type=event_type)], expected_version=0
        ),
    )
    assert isinstance(error, InvalidTypeNameError), error


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"data": "not json"}, "its data is not valid JSON"),
        ({"data": "[1, 2]"}, "its data is not a JSON object but a JSON array"),
        ({"data": '"text"'}, "not a JSON object but a JSON string"),
        ({"data": "null"}, "not a JSON object but a JSON null"),
        ({"data": '{"a": NaN}'}, "its data is not valid JSON"),
        ({"data": '{"a": Infinity}'}, "its data is not valid JSON"),
        ({"data": '{"a": "x\\u0000y"}'}, "its data holds a NUL character"),
        ({"data": '{"x\\u0000": 1}'}, "its data holds a NUL character"),
        ({"data": '{"a": "\\\\\\u0000"}'}, "its data holds a NUL character"),
        ({"data": '{"a": "lone \\ud800"}'}, "its data is not valid JSON"),
        ({"data": '{"a": "lone \udcff"}'}, "its data is not valid JSON"),
        ({"data": b'{"n": 1}'}, "its data is not a string but bytes"),
        ({"data": {"n": 1}}, "its data is not a string but dict"),
        ({"metadata": "nope"}, "its metadata is not valid JSON"),
        ({"metadata": "[]"}, "its metadata is not a JSON object"),
        ({"metadata": '{"a": "\\u0000"}'}, "its metadata holds a NUL character"),
        # PostgreSQL's numeric keeps at most 16383 digits after the point: 1e-20000 is 0.0
        # to orjson, and "value overflows numeric format" (a StoreError) to jsonb.
        ({"data": '{"a": 1e-20000}'}, "its data holds the number 1e-20000, which PostgreSQL"),
        ({"data": '{"a": [0e-16384]}'}, "holds the number 0e-16384"),
        ({"data": '{"a": 1.55e-16382}'}, "holds the number 1.55e-16382"),
        ({"data": '{"a": 1' + "0" * 17000 + "e-17000}"}, "which PostgreSQL cannot store"),
        ({"data": '{"a": 1e999999999999}'}, "its data is not valid JSON"),
        ({"data": '{"a": 0.' + "1" * 16384 + "}"}, "which PostgreSQL cannot store"),
        ({"metadata": '{"a": 1e-20000}'}, "its metadata holds the number 1e-20000"),
        # Nested deeper than the parsers go: a RecursionError, on every store.
        ({"data": '{"a": ' + "[" * 5000 + "]" * 5000 + "}"}, "its data is not valid JSON"),
        ({"data": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"}, "its data is not valid JSON"),
    ],
    ids=lambda fields: repr(fields)[:60],
)
def test_payloads_that_are_not_json_objects_every_store_keeps_are_refused(
    store: EventStore, fields: dict[str, Any], reason: str
) -> None:
    """Raw payloads are checked as the serializer's are: SQLite and memory stored text that
    is not a JSON object (or holds \\u0000, which jsonb cannot), PostgreSQL failed with a
    StoreError. The error names the event id and the stream; a good event before the bad one
    is not written either."""
    bad = event(**fields)
    error = refused_before_writing(
        store, lambda: store.append("s-1", "S", [event(), bad], expected_version=0)
    )
    assert isinstance(error, EventEncodingError)
    assert reason in str(error)
    assert str(bad.event_id) in str(error)
    assert "'s-1'" in str(error)


@pytest.mark.parametrize(
    "fields",
    [
        {"data": '{"a": "\\\\u0000"}'},  # a backslash, then "u0000": no NUL
        {"data": '{"a": "\\\\\\\\u0000", "b": [1, {"c": null}]}'},
        {"data": '{"a": "x\\u0001y", "b": "\\ud83d\\ude00"}'},
        {"data": '  {"n": 1.5e300, "big": 18446744073709551616}\n'},
        {"data": "{}", "metadata": '{"correlation_id": "c"}'},
        # As many digits after the point as PostgreSQL's numeric keeps, and a string that
        # spells a number it could not.
        {"data": '{"a": 1e-16383, "b": 1.5e-16382, "c": 0.1e-16382, "d": "1e-20000"}'},
        {"data": '{"a": 0.' + "0" * 17000 + '1e17000, "b": 0e99999}'},
        {"data": '{"a": ' + "[" * 600 + "]" * 600 + "}"},  # deeper than orjson writes
    ],
    ids=lambda fields: repr(fields)[:60],
)
def test_payloads_every_store_keeps_are_stored(store: EventStore, fields: dict[str, str]) -> None:
    """What the check lets through, every store stores, and reads back as the same JSON."""
    new = event(**fields)
    store.append("s-1", "S", [new], expected_version=0)
    (stored,) = store.read_stream("s-1")
    assert orjson.loads(stored.data) == orjson.loads(new.data)
    assert orjson.loads(stored.metadata) == orjson.loads(new.metadata)


@event_class(name="BadInputCounted")
class Counted:
    n: int


@aggregate(stream_type="BadInputCounter")
class Counter:
    n: int = 0

    @applies(Counted)
    def _on_counted(self, e: Counted) -> None:
        self.n = e.n


@pytest.mark.parametrize("n", [2**70, -(2**200), 10**400, -(10**4000)])
def test_a_save_of_big_ints_reads_back(backend: Backend, n: int) -> None:
    """Ints past 64 bits load back exactly; past a double's range (10**400) too: orjson,
    which reads payloads, cannot parse them, and the store's check refused such a save
    (before it, the save was stored and every load failed with CorruptEventError)."""
    counters = backend.repository(Counter)
    counter = new(Counter, "c-1")
    emit(counter, Counted(n=n))
    counters.save(counter)
    assert counters.load("c-1").n == n


def test_a_save_of_an_int_no_parser_reads_is_refused(backend: Backend) -> None:
    """An int of more digits than Python parses from text (sys.get_int_max_str_digits) is
    refused on save, writing nothing."""
    counters = backend.repository(Counter)
    counter = new(Counter, "c-1")
    emit(counter, Counted(n=10**5000))
    with pytest.raises(EventEncodingError):
        counters.save(counter)
    assert backend.store.head() == 0


@pytest.mark.parametrize("expected", [-1, "1", 1.0, True, None, "any", 2**63])
def test_an_expected_version_no_stream_can_have_is_refused(
    store: EventStore, expected: Any
) -> None:
    """expected_version below 0 was a plain ValueError and a str a TypeError; True passed
    for 1; past 2**63 - 1 PostgreSQL failed with a StoreError where the others raised
    ConcurrencyError. Every store now refuses them all alike, naming the stream."""
    error = refused_before_writing(
        store, lambda: store.append("s-1", "S", [event()], expected_version=expected)
    )
    assert isinstance(error, InvalidVersionError), error
    assert isinstance(error, ValueError)
    assert (error.stream_id, error.version, error.expected) == ("s-1", expected, True)
    assert "expected_version" in str(error)
    assert "'s-1'" in str(error)


@pytest.mark.parametrize("expected", [0, ExpectedVersion.NO_STREAM, ExpectedVersion.ANY])
def test_a_new_stream_takes_every_expectation_it_meets(store: EventStore, expected: Any) -> None:
    assert store.append("s-1", "S", [event()], expected_version=expected).version == 1


def test_the_highest_expected_version_is_a_conflict_not_an_error(store: EventStore) -> None:
    """2**63 - 1 is a version a stream could have: a conflict, on every store alike."""
    with pytest.raises(ConcurrencyError):
        store.append("s-1", "S", [event()], expected_version=2**63 - 1)
    assert store.head() == 0


OUT_OF_RANGE = [
    {"after": -1},
    {"limit": -1},
    {"after": 2**63},
    {"limit": 2**63},
    {"after": "3"},
    {"after": 1.5},
    {"after": True},
    {"after": None},
    {"limit": "2"},
    {"limit": False},
]


@pytest.mark.parametrize("read", OUT_OF_RANGE, ids=repr)
def test_reads_by_query_with_positions_or_limits_out_of_range_are_refused(
    store: EventStore, read: dict[str, Any]
) -> None:
    """after=-1 read from the start on memory and PostgreSQL, limit=-1 was unlimited in
    memory and a StoreError on PostgreSQL; past 2**63 - 1 SQLite raised OverflowError."""
    store.append("s-1", "S", [event()], expected_version=0)
    with pytest.raises(InvalidPositionError) as raised:
        store.read_query(Query.all(), **read)
    (what,) = read
    assert raised.value.what == f"read_query {what}"
    assert raised.value.position == repr(read[what])


@pytest.mark.parametrize("read", [*OUT_OF_RANGE, {"limit": None}], ids=repr)
def test_reads_of_the_global_order_with_positions_or_limits_out_of_range_are_refused(
    store: EventStore, read: dict[str, Any]
) -> None:
    store.append("s-1", "S", [event()], expected_version=0)
    with pytest.raises(InvalidPositionError) as raised:
        store.read_all(**read)
    (what,) = read
    assert raised.value.what == f"read_all {what}"


@pytest.mark.parametrize("after", [0, 1, 2**63 - 1])
@pytest.mark.parametrize("limit", [0, 1, 2**63 - 1])
def test_reads_take_every_position_and_limit(store: EventStore, after: int, limit: int) -> None:
    store.append("s-1", "S", [event()], expected_version=0)
    expected = 1 if after == 0 and limit > 0 else 0
    assert len(store.read_query(Query.all(), after=after, limit=limit).events) == expected
    assert len(store.read_all(after=after, limit=limit)) == expected
    assert len(store.read_query(Query.all(), after=after).events) == (1 if after == 0 else 0)
