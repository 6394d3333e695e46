# WARNING: generated from _subscription_spec_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""What a subscription is: what to deliver to whom, and the handler or projection it goes to."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import attrs

from esframework._checks import MAX_STREAM_ID_LENGTH
from esframework._envelope import Envelope
from esframework._partition import Partition
from esframework._queries import Query
from esframework.errors import InvalidSubscriptionError

__all__ = [
    "Handler",
    "Projection",
    "Subscription",
]

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


class Handler(Protocol[C_contra]):
    """Handles one event; `connection` is in the transaction that also moves the checkpoint."""

    def __call__(self, envelope: Envelope[Any], connection: C_contra, /) -> None: ...


@runtime_checkable
class Projection(Protocol[C_contra]):
    """A read model kept in the store's database, updated with exactly-once effects.

    `handle` writes through `connection` only; `reset` deletes the read model's data, so the
    projection can be rebuilt from the first event.
    """

    def handle(self, envelope: Envelope[Any], connection: C_contra, /) -> None: ...

    def reset(self, connection: C_contra, /) -> None: ...


def _storable_name(_: object, __: object, name: str) -> None:
    if not 1 <= len(name) <= MAX_STREAM_ID_LENGTH:
        msg = f"subscription names need 1 to {MAX_STREAM_ID_LENGTH} characters: {name[:80]!r}"
        raise InvalidSubscriptionError(msg)


def check_unique_names(subscriptions: Sequence[Subscription[Any]]) -> None:
    """Raise `InvalidSubscriptionError` if two subscriptions share a name (and so a
    checkpoint)."""
    names = [s.name for s in subscriptions]
    if len(set(names)) != len(names):
        msg = f"subscription names must be unique, got {names}"
        raise InvalidSubscriptionError(msg)


def _at_least_one(subscription: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    # 0 events a page read nothing: the worker took the store for caught up, and with a
    # filter moved its checkpoint past every event unhandled.
    if type(value) is not int or value < 1:
        name, setting = subscription.name, attribute.name
        msg = f"subscription {name!r}: {setting} must be a whole number from 1, not {value!r}"
        raise InvalidSubscriptionError(msg)


def _seconds(*, above_zero: bool) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(subscription: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        number = value if isinstance(value, int | float) and type(value) is not bool else None
        if number is None or not math.isfinite(number) or number < 0 or (above_zero and not number):
            least = "above 0" if above_zero else "from 0"
            name, setting = subscription.name, attribute.name
            msg = f"subscription {name!r}: {setting} must be a number of seconds {least}"
            msg += f", not {value!r}"
            raise InvalidSubscriptionError(msg)

    return check


def _frozen(values: Collection[Any] | None) -> frozenset[Any] | None:
    return None if values is None else frozenset(values)


@attrs.frozen(kw_only=True)
class Subscription(Generic[C]):
    """What to deliver to whom, and how to cope with failures.

    Attributes:
        name: Identifies the subscription's checkpoint and lease; keep it stable.
        handler: A function `(envelope, connection)`, or a projection object with `handle`
            and `reset`.
        stream_types: Deliver only events of these stream (aggregate) types.
        event_types: Deliver only events of these classes (stored under any of their names,
            old ones included). The worker then refuses to run while the store holds event
            types that no registered class or upcaster maps to (see
            `UnmappedEventTypesError`): they may be a renamed class's old events.
        ignored_event_types: Stored event type names the `event_types` check passes over:
            events of another application, which this one has no classes for.
        start: Where a new subscription starts: at the first event, or after the last one.
        batch_size: Events per transaction when all goes well (and the page size). The
            counts are whole numbers from 1, the intervals seconds
            (`InvalidSubscriptionError` otherwise).
        max_attempts: How often a failing event is tried before parking or stopping.
        retry_delay: Seconds before the first retry; it doubles with each attempt.
        dead_letter: After `max_attempts`, park the event and go on (True), or stop with a
            `SubscriptionError`, the checkpoint before the event (False).
        on_poison: What becomes of the later events of a stream with a parked event.
            ``"park_stream"`` (the default) parks them behind it, in order, unhandled, until
            it is resolved (`retry_parked`, `drop_parked`): a read model then always holds a
            prefix of each stream, stale for that stream meanwhile. ``"skip"`` parks only the
            event and handles the later ones without it, out of order for that stream.
        poll_interval: The longest a caught-up worker waits before looking for events even
            without a notification.
        lease_interval: How often a standby instance tries to take the lease.
        skip_checkpoint_interval: With filters, the worker moves past events they leave out
            without handling them; it saves such a skipped-ahead position at most this
            often (seconds), unless `skip_checkpoint_positions` is reached first. A restart
            may skip those events again; checkpoints after handled events are immediate.
        skip_checkpoint_positions: Save a skipped-ahead position once it is this many
            positions past the stored checkpoint, however recent the last save.
        partition: Deliver only this partition's streams (set by `partitioned`).
        query: Deliver only the events this query matches (by stored type name and tags),
            in the global order, aggregate events and decisions' alike; combines with the
            other filters (an event must pass them all).
    """

    name: str = attrs.field(validator=_storable_name)
    handler: Handler[C] | Projection[C]
    stream_types: Collection[str] | None = attrs.field(default=None, converter=_frozen)
    event_types: Collection[type[Any]] | None = attrs.field(default=None, converter=_frozen)
    ignored_event_types: Collection[str] = attrs.field(default=(), converter=frozenset)
    start: Literal["beginning", "end"] = "beginning"
    batch_size: int = attrs.field(default=100, validator=_at_least_one)
    max_attempts: int = attrs.field(default=5, validator=_at_least_one)
    retry_delay: float = attrs.field(default=0.1, validator=_seconds(above_zero=False))
    dead_letter: bool = False
    on_poison: Literal["park_stream", "skip"] = attrs.field(
        default="park_stream", validator=attrs.validators.in_(("park_stream", "skip"))
    )
    poll_interval: float = attrs.field(default=1.0, validator=_seconds(above_zero=True))
    lease_interval: float = attrs.field(default=1.0, validator=_seconds(above_zero=True))
    skip_checkpoint_interval: float = attrs.field(default=5.0, validator=_seconds(above_zero=False))
    skip_checkpoint_positions: int = attrs.field(default=1000, validator=_at_least_one)
    partition: Partition | None = None
    query: Query | None = None
