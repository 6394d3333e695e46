"""Bad input to the stores: a framework error naming what is wrong, and nothing written.

Each case runs on every backend: they must all refuse the same input with the same error,
before anything is stored (an append-only store can never drop an event it cannot read).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from esframework import AppendCondition, EventStore, NewEvent, Query, QueryItem
from esframework.errors import (
    EsframeworkError,
    EventEncodingError,
    InvalidPositionError,
    InvalidStreamIdError,
    InvalidTypeNameError,
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


@pytest.mark.xfail(
    strict=True,
    reason="raw NewEvent payloads are not checked: SQLite and memory store text that is not a "
    "JSON object (or holds \\u0000, which jsonb cannot), PostgreSQL fails with a StoreError",
)
@pytest.mark.parametrize(
    "fields",
    [
        {"data": "not json"},
        {"data": "[1, 2]"},
        {"data": '{"a": NaN}'},
        {"data": '{"a": "x\\u0000y"}'},
        {"metadata": "nope"},
        {"metadata": '{"a": "\\u0000"}'},
    ],
    ids=repr,
)
def test_payloads_that_are_not_json_objects_every_store_keeps_are_refused(
    store: EventStore, fields: dict[str, str]
) -> None:
    error = refused_before_writing(
        store, lambda: store.append("s-1", "S", [event(**fields)], expected_version=0)
    )
    assert isinstance(error, EventEncodingError)


@pytest.mark.xfail(
    strict=True,
    reason="expected_version below 0 is a plain ValueError and a str a TypeError (and past "
    "2**63 - 1 a StoreError on PostgreSQL where the others raise ConcurrencyError)",
)
@pytest.mark.parametrize("expected", [-1, "1"])
def test_an_expected_version_no_stream_can_have_is_refused(
    store: EventStore, expected: Any
) -> None:
    refused_before_writing(
        store, lambda: store.append("s-1", "S", [event()], expected_version=expected)
    )


@pytest.mark.xfail(
    strict=True,
    reason="read positions and limits are not checked: after=-1 reads from the start on memory "
    "and PostgreSQL, limit=-1 is unlimited in memory and a StoreError on PostgreSQL; past "
    "2**63 - 1 SQLite raises OverflowError",
)
@pytest.mark.parametrize(
    "read",
    [
        {"after": -1},
        {"limit": -1},
        {"after": 2**63},
        {"limit": 2**63},
    ],
    ids=repr,
)
def test_reads_by_query_with_positions_or_limits_out_of_range_are_refused(
    store: EventStore, read: dict[str, int]
) -> None:
    store.append("s-1", "S", [event()], expected_version=0)
    with pytest.raises(InvalidPositionError):
        store.read_query(Query.all(), **read)
