"""The event that closes a stream, as handlers and projections receive it."""

from __future__ import annotations

from esframework._events import event
from esframework._retention import CLOSED_EVENT_TYPE

__all__ = ["StreamClosed"]


@event(name=CLOSED_EVENT_TYPE)
class StreamClosed:
    """A stream's tombstone: its last event, appended by `tombstone`.

    Subscriptions deliver it in the global order like any event, so a handler or projection
    learns that a stream is closed for good (``isinstance(envelope.event, StreamClosed)``):
    the envelope names the stream and the tombstone's version, and its metadata says who
    closed it and why, if the closer gave any. A subscription filtered by event classes
    receives it only if `StreamClosed` is among them. Aggregates never apply it: a load that
    meets it raises `StreamClosedError`.
    """
