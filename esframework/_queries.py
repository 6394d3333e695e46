"""Queries over tagged events: the store's vocabulary for dynamic consistency boundaries.

A decision that spans several streams ("a course takes at most N students and a student at
most M courses") reads the events it needs by query, and appends with a condition on that
query: the append fails if any matching event was stored after what the decision read.
These types match stored type names and tags, like `read_all`'s filters; they know nothing
of event classes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Final, NamedTuple
from uuid import UUID

import attrs

from esframework._records import NewEvent, StoredEvent
from esframework.errors import InvalidEventIdError, InvalidPositionError, InvalidTagError

__all__ = [
    "MAX_TAG_LENGTH",
    "AppendCondition",
    "Query",
    "QueryItem",
    "QueryResult",
    "validate_event_tags",
    "validate_tag",
]

MAX_POSITION: Final = 2**63 - 1
"""The largest global position every store can hold (a signed 64-bit integer)."""

MAX_TAG_LENGTH: Final = 255
"""The longest tag every store keeps as it is (the PostgreSQL column's `VARCHAR(255)`)."""


def validate_tag(tag: object, stream_id: str | None = None) -> None:
    """Raise `InvalidTagError` unless `tag` is a string every store can keep as it is."""
    if not isinstance(tag, str):
        raise InvalidTagError(repr(tag), stream_id, "it is not a string")
    if not tag:
        raise InvalidTagError(tag, stream_id, "it is empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTagError(
            tag, stream_id, f"it has {len(tag)} characters, more than {MAX_TAG_LENGTH}"
        )
    if "\x00" in tag:
        raise InvalidTagError(tag, stream_id, "it contains a NUL character")


def validate_event_tags(stream_id: str, events: Sequence[NewEvent]) -> None:
    """Raise `InvalidTagError` unless every tag of `events` can be stored.

    Tags are a set: an event's tags are stored sorted and unique whatever order they came in
    (the serializer sorts them already), so only the tags themselves are checked here.
    """
    for e in events:
        tags: object = e.tags  # typed a tuple, but callers may pass anything
        if isinstance(tags, str):  # a str is an iterable of one-letter tags: refuse it
            raise InvalidTagError(tags, stream_id, "tags must be a tuple of strings")
        for tag in e.tags:
            validate_tag(tag, stream_id)


def stored_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Return tags as every store keeps them: sorted, each once."""
    return tuple(sorted(set(tags)))


def _names(values: Iterable[str]) -> frozenset[str]:
    # A bare str would become a set of its letters: refuse it rather than match nothing.
    if isinstance(values, str):
        msg = f"give a collection of names, not the string {values!r}"
        raise TypeError(msg)
    return frozenset(values)


def _tags(values: Iterable[str]) -> frozenset[str]:
    tags = _names(values)
    for tag in tags:
        validate_tag(tag)
    return tags


@attrs.frozen
class QueryItem:
    """One alternative of a query: events of one of `types` carrying all of `tags`.

    An item with no types matches events of any type; an item with no tags matches events
    whatever their tags; an item with neither matches every event.

    Attributes:
        types: The stored event type names, any of which matches (any type if empty).
        tags: The tags a matching event must all carry (it may carry others too).
    """

    types: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_tags)

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        """Return whether an event of this stored type with these tags matches the item."""
        return (not self.types or event_type in self.types) and self.tags.issubset(tags)

    def __str__(self) -> str:
        types = "|".join(sorted(self.types)) or "any type"
        tags = ", ".join(sorted(self.tags))
        return f"{types} [{tags}]" if tags else types


def _items(values: Iterable[QueryItem]) -> tuple[QueryItem, ...]:
    # Each item once, in the order first given: equal queries compare and print equal.
    return tuple(dict.fromkeys(values))


@attrs.frozen
class Query:
    """An OR of `QueryItem`s: an event matches when it matches any of them.

    `Query.all()` (no items) matches every event. Queries compose with `|`.

    Attributes:
        items: The alternatives; empty for the query of all events.
    """

    items: tuple[QueryItem, ...] = attrs.field(default=(), converter=_items)

    @classmethod
    def all(cls) -> Query:
        """Return the query that matches every event."""
        return cls(())

    @classmethod
    def of(cls, *items: QueryItem) -> Query:
        """Return the query matching the events any of `items` matches.

        With no items this is `Query.all()`.
        """
        return cls(items)

    @property
    def is_all(self) -> bool:
        """Whether the query matches every event (no items, or an item with no criteria)."""
        return not self.items or any(not i.types and not i.tags for i in self.items)

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        """Return whether an event of this stored type with these tags matches the query."""
        return not self.items or any(i.matches(event_type, tags) for i in self.items)

    def __or__(self, other: Query) -> Query:
        """Return the query matching what either query matches."""
        if not self.items or not other.items:
            return Query.all()
        return Query((*self.items, *other.items))

    def __str__(self) -> str:
        if not self.items:
            return "all events"
        return " OR ".join(str(i) for i in self.items)


def _event_ids(ids: Iterable[UUID]) -> frozenset[UUID]:
    return frozenset(ids)


@attrs.frozen
class AppendCondition:
    """What a conditional append requires: no event matching the query after `after`.

    Attributes:
        fail_if_events_match: The query of the events the decision depends on.
        after: The position the decision saw the store up to (usually the `head` of the
            `QueryResult` it read); None requires that no matching event exists at all.
        seen: The ids of events the decision read that had no position yet: inside a unit
            of work on PostgreSQL, the unit's own events, which get their positions when it
            commits. The condition passes over these, and only these, of the unit's own
            events; `QueryResult.condition` fills them in. (The other stores position
            every event at once: nothing to fill in there.)
    """

    fail_if_events_match: Query
    after: int | None = attrs.field(default=None)
    seen: frozenset[UUID] = attrs.field(default=frozenset(), converter=_event_ids)

    @after.validator
    def _check_after(self, _: object, after: object) -> None:
        # A bool is an int to Python, and -1 or a huge value would pass for another position
        # on some stores and fail on others: refuse them all alike, before any append.
        if after is None:
            return
        if type(after) is not int or not 0 <= after <= MAX_POSITION:
            raise InvalidPositionError("AppendCondition.after", repr(after))

    @seen.validator
    def _check_seen(self, _: object, seen: frozenset[object]) -> None:
        for event_id in seen:
            if not isinstance(event_id, UUID):
                raise InvalidEventIdError("AppendCondition.seen", repr(event_id))


class QueryResult(NamedTuple):
    """What `read_query` found.

    Attributes:
        events: The matching events, in global order.
        head: A position up to which the read saw every matching event: use it as the
            `after` of the `AppendCondition` of a decision built from these events. It may
            lie past the last matching event (the store's head when the read ended); with a
            `limit` that cut the read short, it is the last event's position.
    """

    events: list[StoredEvent]
    head: int

    def condition(self, query: Query) -> AppendCondition:
        """The condition of a decision made from this read of `query`: no event matching
        it after this read's `head`, passing over the events it returned that have no
        position yet (a unit of work's own, on PostgreSQL: see `AppendCondition.seen`)."""
        seen = frozenset(e.event_id for e in self.events if e.position == 0)
        return AppendCondition(query, after=self.head, seen=seen)
