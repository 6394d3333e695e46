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
    """An event to append: its id, stored type and JSON payload (as text).

    `Serializer.encode` makes these from events; stores take them as they are.

    Attributes:
        event_id: The event's id, the events table's primary key: appending the same id
            again with the same content is a no-op (see idempotent writes).
        event_type: The name the event class is registered under, such as ``"MoneyAdded"``.
        schema_version: The event type's schema version the data was written at (from 1);
            older versions are upcast when read.
        data: The event's fields as a JSON object, in text.
        metadata: The event's metadata as a JSON object, in text; ``"{}"`` (the default)
            for none.
        tags: The event's tags, such as ``("course:c1", "student:s7")``, which queries
            (`Query`) match; sorted and each once (the serializer makes them so). Each is a
            non-empty string of at most 255 characters (`InvalidTagError` otherwise).
    """

    event_id: UUID
    event_type: str
    schema_version: int
    data: str
    metadata: str = "{}"
    tags: tuple[str, ...] = ()


class StoredEvent(NamedTuple):
    """An event as the store recorded it.

    A named tuple, like a database row: reading many of them is cheap. Its `position` is
    its place in the global order; a stream read on PostgreSQL may meet an event that has
    committed but not been positioned yet (for a few milliseconds): its position is then 0.
    Global reads (`read_all`) only ever return positioned events.

    Attributes:
        event_id: The id the event was appended with.
        stream_id: The stream (aggregate id) the event belongs to.
        stream_type: The stream's aggregate type, such as ``"Account"``.
        event_type: The name the event was stored under (before any upcasting).
        schema_version: The schema version the data was stored at (before any upcasting).
        data: The event's fields as a JSON object, in text, as stored.
        metadata: The event's metadata as a JSON object, in text; ``"{}"`` for none.
        version: The event's 1-based version within its stream.
        position: The event's place in the store's global order (from 1); 0 for an event a
            PostgreSQL stream read met before it was positioned (never from `read_all`).
        recorded_at: When the store recorded the event, timezone-aware (UTC).
        tags: The event's tags, sorted, each once; empty for an event appended without.
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
    tags: tuple[str, ...] = ()


class EventPayload(NamedTuple):
    """What rebuilding an aggregate needs of a stored event: its type, version and data.

    `stream_type` lets a repository refuse a stream of another aggregate type.

    Attributes:
        stream_id: The stream the event belongs to.
        version: The event's 1-based version within its stream.
        position: The event's place in the global order; 0 on PostgreSQL for an event not
            positioned yet, as in `StoredEvent`.
        event_type: The name the event was stored under (before any upcasting).
        schema_version: The schema version the data was stored at (before any upcasting).
        data: The event's fields as a JSON object, in text, as stored.
        stream_type: The stream's aggregate type, such as ``"Account"``.
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
        version: The stream's version after the append (the last event's version). For an
            idempotent repeat of stored events, the version the stored append reached.
        positions: The global position of each event, in the order given, where the store
            knows it at append time (memory and SQLite). Empty on PostgreSQL, which assigns
            positions just after the commit (see "The global order" in the concepts): read
            them with `read_all`, which waits for the store's own appends to be positioned.
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
        positions: The global position of each event, in the order given; empty on
            PostgreSQL, which positions events after the commit (as in `AppendResult`).
        snapshot_error: The exception the snapshot after the append raised (an
            `EventEncodingError` for a state that cannot be stored, a `StoreError` for a
            store that refused it); None if the snapshot succeeded or none was due. The
            events are committed either way.
    """

    stream_id: str
    version: int
    positions: tuple[int, ...]
    snapshot_error: Exception | None = None


@attrs.frozen(kw_only=True)
class SnapshotRecord:
    """An aggregate's encoded state at one version of its stream.

    A store keeps one snapshot per stream: saving another replaces it.

    Attributes:
        stream_id: The stream (aggregate id) the state belongs to.
        stream_type: The stream's aggregate type; a repository of another type refuses
            the snapshot with `StreamTypeMismatchError`.
        state_schema: Identifies the aggregate's state shape; a snapshot whose schema differs
            from the aggregate's current one is ignored.
        version: The stream version the state is as of (from 1): loads apply only the
            events after it.
        data: The aggregate's state as a JSON object, in text.
    """

    stream_id: str
    stream_type: str
    state_schema: str
    version: int
    data: str


@attrs.frozen(kw_only=True)
class ParkedEvent:
    """An event a subscription set aside after its handler kept failing on it.

    Only subscriptions with `dead_letter=True` park events; the checkpoint moves past them.
    With `on_poison="park_stream"`, the later events of the parked event's stream are parked
    behind it, unhandled, until it is resolved.

    Attributes:
        subscription: The name of the subscription that parked the event.
        position: The event's place in the global order.
        event_id: The event's id.
        stream_id: The stream the event belongs to.
        event_type: The name the event is stored under.
        error: The `repr` of the handler's last error (or of the decoding error).
        parked_at: When the event was parked, timezone-aware (UTC).
    """

    subscription: str
    position: int
    event_id: UUID
    stream_id: str
    event_type: str
    error: str
    parked_at: datetime
