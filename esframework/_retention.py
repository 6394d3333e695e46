"""Closing and truncating streams: the decisions every store shares, sync or async.

A closed stream ends with its tombstone: an event of the reserved type `CLOSED_EVENT_TYPE`,
appended like any other. It takes the stream's next version, so the stream's optimistic
concurrency orders it against racing appends, and it reaches subscriptions in the global
order. Its event id is derived from the stream id, so a stream has one tombstone at most and
closing again is an idempotent retry. Every store refuses appends after it.

A stream truncated before a version (and a closed stream, before its tombstone) keeps its
events, but stream reads start at that version unless they ask for the archived part too;
the archive pass moves the events before it out of the hot table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from uuid import UUID, uuid5

from esframework._records import NewEvent
from esframework.errors import InvalidTruncationError, StreamClosedError

__all__ = [
    "CLOSED_EVENT_TYPE",
    "check_open",
    "check_tombstone_last",
    "check_truncation",
    "is_tombstone",
    "tombstone_event",
]

CLOSED_EVENT_TYPE: Final = "$StreamClosed"
"""The stored type of a tombstone (`StreamClosed`); `$` keeps it apart from event classes."""

# The namespace of tombstone ids: uuid5(namespace, stream id) names a stream's one tombstone.
_TOMBSTONE_IDS: Final = UUID("5d0c6a0e-51c3-4a8f-9a55-2f4c1e7b9d21")


def tombstone_event(stream_id: str, metadata: str = "{}") -> NewEvent:
    """Return the tombstone that closes `stream_id`: the same event id every time."""
    return NewEvent(
        event_id=uuid5(_TOMBSTONE_IDS, stream_id),
        event_type=CLOSED_EVENT_TYPE,
        schema_version=1,
        data="{}",
        metadata=metadata,
    )


def is_tombstone(event_type: str) -> bool:
    """Return whether an event of this stored type closes its stream."""
    return event_type == CLOSED_EVENT_TYPE


def check_open(stream_id: str, last_event_type: str | None, last_version: int) -> None:
    """Raise `StreamClosedError` if the stream's last event is its tombstone.

    Args:
        stream_id: The stream appended to.
        last_event_type: The stored type of the stream's last event (None: no events).
        last_version: That event's version.
    """
    if last_event_type == CLOSED_EVENT_TYPE:
        raise StreamClosedError(stream_id, last_version)


def check_truncation(stream_id: str, version: int, snapshot_version: int | None) -> None:
    """Raise `InvalidTruncationError` unless loads can do without the events before `version`.

    They can when `version` is at or below the stream's latest snapshot: loads start at the
    snapshot and read only the events after it.
    """
    # An int only: a float or a bool passed through, stored as it was (1.5 broke every read
    # of the memory store's stream, and the SQL stores rounded it to a truncation point not
    # asked for), and other types failed with TypeError or StoreError.
    if (
        type(version) is not int
        or version < 1
        or snapshot_version is None
        or version > snapshot_version
    ):
        raise InvalidTruncationError(stream_id, version, snapshot_version)


def check_tombstone_last(events: Sequence[NewEvent]) -> None:
    """Raise `ValueError` if an append holds a tombstone followed by other events."""
    for event in events[:-1]:
        if event.event_type == CLOSED_EVENT_TYPE:
            msg = "a tombstone must be the last event of its append: nothing follows it"
            raise ValueError(msg)
