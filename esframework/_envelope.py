"""What travels with every recorded event: its envelope and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar
from uuid import UUID

import attrs

__all__ = ["Envelope", "Metadata"]

E_co = TypeVar("E_co", covariant=True)


@attrs.frozen(kw_only=True)
class Metadata:
    """Why an event happened: the request it belongs to and the message that caused it.

    Attributes:
        correlation_id: Shared by every event of one business transaction, across streams.
        causation_id: The id of the event or command that directly caused this one.
        extra: Any other JSON-compatible facts (user id, request id, ...). Keep it small.
    """

    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def caused_by(cls, cause: Envelope[object], **extra: Any) -> Metadata:
        """Return metadata for events caused by `cause`, in the same correlation."""
        correlation = cause.metadata.correlation_id or cause.event_id
        return cls(correlation_id=correlation, causation_id=cause.event_id, extra=extra)


class Envelope(NamedTuple, Generic[E_co]):
    """A stored event with everything the store knows about it.

    A named tuple: subscriptions and catch-up reads create many of them.

    Attributes:
        event: The typed event, upcast to its current schema version.
        event_id: Created when the event was emitted; a retried write carries the same id.
        stream_id: The stream (aggregate) the event belongs to.
        stream_type: The aggregate type of the stream, such as ``"Account"``.
        version: The event's 1-based version within its stream.
        position: The event's place in the store's global order.
        recorded_at: When the store recorded the event (UTC).
        metadata: Correlation and causation ids and other facts.
        tags: The event's tags (``"course:c1"``), sorted: those its class's `tag(...)`
            fields give it and those given when it was emitted. Queries select events by
            them (see "Decision models" in the concepts).
    """

    event: E_co
    event_id: UUID
    stream_id: str
    stream_type: str
    version: int
    position: int
    recorded_at: datetime
    metadata: Metadata
    tags: tuple[str, ...] = ()


NO_METADATA = Metadata()
"""The metadata of events saved without any: one shared instance, recognised cheaply."""
