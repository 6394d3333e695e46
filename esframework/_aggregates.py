"""Aggregates: `@aggregate` state classes, `@applies` handlers, and `emit`.

An aggregate is a plain attrs class. Its commands are ordinary methods that check invariants
and then `emit` events; `@applies` handlers change the state. The framework keeps each
instance's identity, version and pending events beside the state, out of the user's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple, TypeVar, cast, overload
from uuid import UUID, uuid4

import attrs
from typing_extensions import dataclass_transform

from esframework._checks import validate_stream_id
from esframework._envelope import NO_METADATA, Metadata
from esframework._events import event_type_of
from esframework._personal._fields import check_personal_fields, personal, personal_fields
from esframework._shapes import attrs_shape, check_definition, fingerprint
from esframework.errors import DefinitionError, MissingHandlerError

__all__ = [
    "AggregateType",
    "PendingEvent",
    "SnapshotPolicy",
    "aggregate",
    "aggregate_id",
    "aggregate_type",
    "aggregate_version",
    "applies",
    "emit",
    "new",
    "pending_events",
]

A = TypeVar("A")
E = TypeVar("E")
S = TypeVar("S")

_HANDLES: Final = "__esframework_applies__"  # set on handler functions by @applies
_TYPE: Final = "__esframework_aggregate__"  # set on aggregate classes by @aggregate
_STATE: Final = "__esframework_state__"  # set on aggregate instances


@attrs.frozen
class SnapshotPolicy:
    """When the repository snapshots an aggregate type automatically.

    Attributes:
        every: Take a snapshot each time a save crosses a multiple of this many events.
    """

    every: int

    def __attrs_post_init__(self) -> None:
        if self.every < 1:
            msg = f"SnapshotPolicy(every=...) must be at least 1, got {self.every}"
            raise ValueError(msg)

    def due(self, before: int, after: int) -> bool:
        """Return whether a save from version `before` to `after` should take a snapshot."""
        return before // self.every != after // self.every


@attrs.frozen
class AggregateType:
    """What `@aggregate` records about an aggregate class."""

    cls: type[Any]
    stream_type: str
    handlers: dict[type[Any], Callable[[Any, Any], None]]
    snapshots: SnapshotPolicy | None
    state_version: int

    @property
    def state_schema(self) -> str:
        """The state's fingerprint, stored with each snapshot: its version and resolved shape.

        The shape is hashed recursively (nested attrs classes, containers, enum members), so a
        change anywhere in it makes older snapshots unusable, and loads replay instead.
        """
        return _state_schema(self.cls, self.state_version)

    def apply(self, state: object, event: object) -> None:
        """Apply one event to the state with its `@applies` handler."""
        handler = self.handlers.get(type(event))
        if handler is None:
            raise MissingHandlerError(self.cls.__qualname__, type(event).__qualname__)
        handler(state, event)


class PendingEvent(NamedTuple):
    """An emitted event that is not saved yet.

    Attributes:
        event: The event object, as given to `emit`.
        event_id: The id it was given when emitted; it keeps it until a save succeeds, so
            a retried save is idempotent.
        metadata: The metadata given to `emit`; `Metadata()` (empty) for none. A save's
            own metadata fills in what it leaves empty.
        tags: The tags given to `emit`, beside those the event's class derives from its
            fields (see `tag`).
    """

    event: object
    event_id: UUID
    metadata: Metadata
    tags: tuple[str, ...] = ()


@attrs.define
class _Tracking:
    """Identity, version and pending events of one aggregate instance."""

    id: str
    version: int = 0
    pending: list[PendingEvent] = attrs.Factory(list)


def applies(event_class: type[E]) -> Callable[[Callable[[S, E], None]], Callable[[S, E], None]]:
    """Mark a method as the handler that applies `event_class` events to the state.

    Handlers change state and never fail: check invariants in commands, before `emit`.
    """

    def decorate(method: Callable[[S, E], None]) -> Callable[[S, E], None]:
        event_type_of(event_class)  # fail at definition time for a class that is no event
        setattr(method, _HANDLES, event_class)
        return method

    return decorate


@overload
def aggregate(cls: type[A], /) -> type[A]: ...


@overload
def aggregate(
    *,
    stream_type: str | None = None,
    snapshots: SnapshotPolicy | None = None,
    state_version: int = 1,
) -> Callable[[type[A]], type[A]]: ...


@dataclass_transform(field_specifiers=(attrs.field, personal))
def aggregate(
    cls: type[A] | None = None,
    /,
    *,
    stream_type: str | None = None,
    snapshots: SnapshotPolicy | None = None,
    state_version: int = 1,
) -> type[A] | Callable[[type[A]], type[A]]:
    """Make a class an aggregate: an attrs class whose state changes only through events.

    Every field needs a default: an aggregate starts blank and its first event fills it in.

    Args:
        cls: The class, when the decorator is used bare (`@aggregate`).
        stream_type: The name stored with its events. Defaults to the class name.
        snapshots: When to snapshot automatically; None takes snapshots only on demand.
        state_version: Raise it when the meaning of the state changes without its fields
            changing (a handler now computes a field differently): snapshots taken before
            are then ignored. Changes to the fields are detected without it.

    Raises:
        DefinitionError: A field has no default.
        UnsupportedFieldTypeError: A field's type cannot be stored and read back exactly in
            a snapshot (an unsupported type, or a union whose members are stored alike).
    """

    def decorate(cls: type[A]) -> type[A]:
        # Not slotted: the framework keeps its tracking beside the user's fields.
        made: type[A] = attrs.define(cls, slots=False)
        for field in attrs.fields(cast("type[attrs.AttrsInstance]", made)):
            if field.default is attrs.NOTHING:
                raise DefinitionError(
                    f"field {field.name!r} of aggregate {cls.__qualname__} needs a default: "
                    "an aggregate starts blank and its first event sets the state"
                )
        check_definition(made)  # fail now, not at the first snapshot, for unstorable fields
        check_personal_fields(made)
        handlers = {
            getattr(member, _HANDLES): member
            for klass in reversed(made.__mro__)
            for member in vars(klass).values()
            if hasattr(member, _HANDLES)
        }
        kind = AggregateType(
            cls=made,
            stream_type=stream_type or cls.__name__,
            handlers=handlers,
            snapshots=snapshots,
            state_version=state_version,
        )
        setattr(made, _TYPE, kind)
        return made

    return decorate if cls is None else decorate(cls)


_FINGERPRINTS: dict[tuple[type[Any], int], str] = {}


def _state_schema(cls: type[Any], state_version: int) -> str:
    # A fingerprint of the resolved shape, so a snapshot of another shape is never loaded.
    found = _FINGERPRINTS.get((cls, state_version))
    if found is None:
        try:
            shape = attrs_shape(cls)
        except NameError:  # a forward reference not defined yet: no snapshot can be written
            return f"{state_version}:unresolved"
        # Sealing a field changes the stored shape too: a snapshot holding it in plaintext
        # is then ignored, and replaced by the next one.
        sealed = "".join(f":personal={field.name}" for field in personal_fields(cls))
        found = _FINGERPRINTS[cls, state_version] = f"{state_version}:{fingerprint(shape)}{sealed}"
    return found


def aggregate_type(cls: type[Any]) -> AggregateType:
    """Return what `@aggregate` recorded about `cls`.

    Raises:
        TypeError: `cls` is not decorated with `@aggregate`.
    """
    kind: AggregateType | None = vars(cls).get(_TYPE)
    if kind is None:
        msg = f"{cls.__qualname__} is not an aggregate: decorate it with @aggregate"
        raise TypeError(msg)
    return kind


def new(cls: type[A], aggregate_id: str) -> A:
    """Return a blank aggregate of type `cls` with identity `aggregate_id`, at version 0.

    Raises:
        InvalidStreamIdError: `aggregate_id` is empty or longer than 255 characters.
    """
    validate_stream_id(aggregate_id)
    aggregate_type(cls)
    instance = cls()
    setattr(instance, _STATE, _Tracking(aggregate_id))
    return instance


def emit(
    aggregate: object,
    event: object,
    *,
    metadata: Metadata | None = None,
    tags: Iterable[str] = (),
) -> None:
    """Apply `event` to `aggregate` now and queue it for the next save.

    Args:
        aggregate: The aggregate the event happens to.
        event: The event.
        metadata: The event's own metadata; the save's fills in what it leaves empty.
        tags: Tags to store with the event beside those its class's `tag(...)` fields give
            it, such as ``["region:eu"]``: queries (and decision models) find it by them.

    Raises:
        MissingHandlerError: The aggregate has no `@applies` handler for the event's class.
        TypeError: `tags` is a single string (give a list of them).
    """
    if isinstance(tags, str):  # a str is an iterable of one-letter tags: never meant
        msg = f"emit(..., tags=...) takes a collection of tags, not the string {tags!r}"
        raise TypeError(msg)
    tracking = _tracking(aggregate)
    aggregate_type(type(aggregate)).apply(aggregate, event)
    tracking.version += 1
    tracking.pending.append(PendingEvent(event, uuid4(), metadata or NO_METADATA, tuple(tags)))


def aggregate_id(aggregate: object) -> str:
    """Return the aggregate's identity, which is also its stream id."""
    return _tracking(aggregate).id


def aggregate_version(aggregate: object) -> int:
    """Return the aggregate's version: the number of events applied, pending ones included."""
    return _tracking(aggregate).version


def pending_events(aggregate: object) -> tuple[PendingEvent, ...]:
    """Return the events emitted since the aggregate was loaded or last saved."""
    return tuple(_tracking(aggregate).pending)


def _tracking(aggregate: object) -> _Tracking:
    tracking: _Tracking | None = getattr(aggregate, _STATE, None)
    if tracking is None:
        msg = (
            f"{type(aggregate).__qualname__} instance has no identity: create aggregates "
            "with esframework.new() or load them with a Repository"
        )
        raise TypeError(msg)
    return tracking


# The repository rebuilds and settles aggregates through these.


def replayed(cls: type[A], aggregate_id: str, version: int, state: A | None = None) -> A:
    """Return `state` (or a blank instance) tracked as `aggregate_id` at `version`."""
    instance = cls() if state is None else state
    setattr(instance, _STATE, _Tracking(aggregate_id, version))
    return instance


def mark_applied(aggregate: object, version: int) -> None:
    """Record that the aggregate's state now includes stored events up to `version`."""
    _tracking(aggregate).version = version


def mark_saved(aggregate: object, count: int) -> None:
    """Drop the first `count` pending events: they are stored."""
    del _tracking(aggregate).pending[:count]
