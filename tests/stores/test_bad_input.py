"""Bad input to the stores: a framework error naming what is wrong, and nothing written.

Each case runs on every backend: they must all refuse the same input with the same error,
before anything is stored (an append-only store can never drop an event it cannot read).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from esframework import AppendCondition, EventStore, NewEvent, Query, QueryItem
from esframework.errors import EventEncodingError, InvalidPositionError, InvalidStreamIdError
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
