"""The store's vocabulary: what goes in, what comes out.

Stores see records, never aggregates or event classes: payloads are JSON bytes encoded and
decoded by the `Serializer`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import attrs

__all__ = [
    "AppendResult",
    "EventPayload",
    "ExpectedVersion",
    "NewEvent",
    "ParkedEvent",
    "SaveResult",
    "SnapshotRecord",
    "StoredEvent",
]


class ExpectedVersion(enum.Enum):
    """Version expectations that are not a plain stream version."""

    ANY = "any"
    """Append whatever the stream's version: no concurrency check."""
    NO_STREAM = "no_stream"
    """The stream must not exist yet (the same as expecting version 0)."""


class NewEvent(NamedTuple):
    """An event to append: its id, stored type and JSON payload (as text)."""

    event_id: UUID
    event_type: str
    schema_version: int
    data: str
    metadata: str = "{}"


class StoredEvent(NamedTuple):
    """An event as the store recorded it.

    A named tuple, like a database row: reading many of them is cheap. Its `position` is
    its place in the global order; a stream read on PostgreSQL may meet an event that has
    committed but not been positioned yet (for a few milliseconds): its position is then 0.
    Global reads (`read_all`) only ever return positioned events.
    """

    event_id: UUID
    stream_id: str
    stream_type: str
    event_type: str
    schema_version: int
    data: str
    metadata: str
    version: int
    position: int
    recorded_at: datetime


class EventPayload(NamedTuple):
    """What rebuilding an aggregate needs of a stored event: its type, version and data.

    `stream_type` lets a repository refuse a stream of another aggregate type.
    """

    stream_id: str
    version: int
    position: int
    event_type: str
    schema_version: int
    data: str
    stream_type: str


class AppendResult(NamedTuple):
    """Where appended events landed.

    Attributes:
        stream_id: The stream appended to.
        version: The stream's version after the append (the last event's version).
        positions: The global position of each event, in the order given, where the store
            knows it at append time (memory and SQLite). Empty on PostgreSQL, which assigns
            positions just after the commit: read them with `read_all`, which waits for
            the store's own appends to be positioned.
    """

    stream_id: str
    version: int
    positions: tuple[int, ...]


class SaveResult(NamedTuple):
    """What `Repository.save` did: where the events landed, and how the snapshot went.

    The first three fields are those of `AppendResult`. Once the events are committed, a
    save never raises: a snapshot that could not be taken after them is logged and reported
    here, and the aggregate simply loads from an older snapshot (or its events) until the
    next one succeeds.

    Attributes:
        stream_id: The stream appended to.
        version: The stream's version after the append (the last event's version).
        positions: The global position of each event, in the order given.
        snapshot_error: Why the snapshot after the append failed; None if it succeeded or
            none was due.
    """

    stream_id: str
    version: int
    positions: tuple[int, ...]
    snapshot_error: Exception | None = None


@attrs.frozen(kw_only=True)
class SnapshotRecord:
    """An aggregate's encoded state at one version of its stream.

    Attributes:
        state_schema: Identifies the aggregate's state shape; a snapshot whose schema differs
            from the aggregate's current one is ignored.
    """

    stream_id: str
    stream_type: str
    state_schema: str
    version: int
    data: str


@attrs.frozen(kw_only=True)
class ParkedEvent:
    """An event a subscription set aside after its handler kept failing on it."""

    subscription: str
    position: int
    event_id: UUID
    stream_id: str
    event_type: str
    error: str
    parked_at: datetime
