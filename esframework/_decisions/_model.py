"""Decision models: `@decision_model` classes, the events they fold, the query they read.

A decision model is the state one rule needs ("how many students has course c1, and what is
its capacity"), folded from the events that rule depends on, wherever they are stored. It is
an attrs class: the fields without a default are its parameters (``course_id``), the fields
with one are its state, and `@applies` methods fold events into the state, as in aggregates.

Its query follows from the events it folds: for each folded event class, the events of that
type whose tags match the model's parameters. A parameter matches an event class's field of
the same name marked with `tag(...)`: ``CourseCapacity(course_id="c1")`` folding
``StudentSubscribed`` (whose ``course_id`` is ``tag("course")``) reads the
``StudentSubscribed`` events tagged ``"course:c1"``. The domain layer states its rules in
its own vocabulary; the query, a storage matter, is derived here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar, cast, overload
from uuid import UUID

import attrs
from typing_extensions import dataclass_transform

from esframework._aggregates import _HANDLES
from esframework._queries import AppendCondition, Query, QueryItem, QueryResult
from esframework._serialization import Serializer
from esframework._shapes import check_definition
from esframework._tags import tag_fields, tag_value
from esframework.errors import DefinitionError, MissingHandlerError

__all__ = [
    "DecisionModelType",
    "Seen",
    "condition",
    "decision_model",
    "decision_model_type",
    "seen",
]

M = TypeVar("M")

_TYPE: Final = "__esframework_decision_model__"  # set on classes by @decision_model
_SEEN: Final = "__esframework_seen__"  # set on instances a read folded


class Seen(NamedTuple):
    """What a read of a decision model saw: the model's query, the store's head then, and
    the events it folded that had no position yet (a unit of work's own, on PostgreSQL),
    by id, with their stored type and tags.

    A save appends with the condition "no event matching `query` after `head`", passing
    over those unpositioned events (see `condition`).
    """

    query: Query
    head: int
    unpositioned: Mapping[UUID, tuple[str, frozenset[str]]]


def condition(views: Sequence[Seen]) -> AppendCondition:
    """The condition of a decision made from models read as `views` saw them.

    No event matching any of their queries after the earliest head; it passes over an
    unpositioned event only if every model whose query matches it folded it (models read
    at different times may have seen different events of the unit).
    """
    candidates: dict[UUID, tuple[str, frozenset[str]]] = {}
    for view in views:
        candidates.update(view.unpositioned)
    passed = frozenset(
        event_id
        for event_id, (event_type, tags) in candidates.items()
        if all(
            event_id in view.unpositioned or not view.query.matches(event_type, tags)
            for view in views
        )
    )
    return AppendCondition(
        fail_if_events_match=union(view.query for view in views),
        after=min(view.head for view in views),
        seen=passed,
    )


@attrs.frozen
class DecisionModelType:
    """What `@decision_model` records about a decision model class.

    Attributes:
        cls: The class.
        name: Its name; the stream type of the events a decision about it appends.
        parameters: The `__init__` names of the fields without a default, in order.
        handlers: The `@applies` method of each event class it folds.
        keys: For each folded event class, its `(field, tag name)` pairs that a parameter
            of the same name fills in: the tags its query item asks for.
    """

    cls: type[Any]
    name: str
    parameters: tuple[tuple[str, str], ...]  # (attribute, __init__ name)
    handlers: dict[type[Any], Callable[[Any, Any], None]]
    keys: dict[type[Any], tuple[tuple[str, str], ...]]

    def query(self, model: object, serializer: Serializer) -> Query:
        """Return the query of `model`: its folded events, with its parameters' tags."""
        items: dict[frozenset[str], set[str]] = {}
        for event_class, keys in self.keys.items():
            tags = frozenset(tag_value(name, getattr(model, field)) for field, name in keys)
            types = items.setdefault(tags, set())
            types.update(serializer.stored_type_names([event_class]))
        return Query.of(
            *(
                QueryItem(types=frozenset(types), tags=tags)
                for tags, types in sorted(items.items(), key=lambda item: sorted(item[0]))
            )
        )

    def blank(self, model: object) -> Any:
        """Return a new instance with `model`'s parameters and its state at the defaults."""
        return self.cls(**{init: getattr(model, field) for field, init in self.parameters})

    def apply(self, model: object, event: object) -> None:
        """Fold one event into the model with its `@applies` handler."""
        handler = self.handlers.get(type(event))
        if handler is None:
            raise MissingHandlerError(self.cls.__qualname__, type(event).__qualname__)
        handler(model, event)


@overload
def decision_model(cls: type[M], /) -> type[M]: ...


@overload
def decision_model(*, name: str | None = None) -> Callable[[type[M]], type[M]]: ...


@dataclass_transform(field_specifiers=(attrs.field,))
def decision_model(
    cls: type[M] | None = None, /, *, name: str | None = None
) -> type[M] | Callable[[type[M]], type[M]]:
    """Make a class a decision model: state folded from the events one rule depends on.

    The fields without a default are the model's parameters, given when it is read
    (``CourseCapacity("c1")``); the fields with one are its state, which `@applies`
    methods fold the read events into. Each folded event class is read with the tags its
    `tag(...)` fields of the same names as parameters give; an event class that tags none
    of them is read by its type alone (every event of that type).

    Args:
        cls: The class, when the decorator is used bare (`@decision_model`).
        name: The model's name, the stream type of the events its decisions append.
            Defaults to the class name.

    Raises:
        DefinitionError: The class folds no event, or a parameter is tagged by none of the
            events it folds (the query would not depend on it: a misspelt name).
        UnsupportedFieldTypeError: A field's type is not one esframework can store.
    """

    def decorate(cls: type[M]) -> type[M]:
        made: type[M] = attrs.define(cls, slots=False)  # the framework keeps `_SEEN` beside
        check_definition(made)
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", made))
        parameters = tuple((f.name, f.alias) for f in fields if f.default is attrs.NOTHING)
        handlers = {
            getattr(member, _HANDLES): member
            for klass in reversed(made.__mro__)
            for member in vars(klass).values()
            if hasattr(member, _HANDLES)
        }
        if not handlers:
            raise DefinitionError(
                f"decision model {cls.__qualname__} folds no events: mark methods with "
                "@applies(EventClass)"
            )
        names = {field for field, _ in parameters}
        keys = {
            event_class: tuple((f, tag) for f, tag in tag_fields(event_class) if f in names)
            for event_class in handlers
        }
        tagged = {field for pairs in keys.values() for field, _ in pairs}
        for field, _ in parameters:
            if field not in tagged:
                raise DefinitionError(
                    f"parameter {field!r} of decision model {cls.__qualname__} is tagged by "
                    "none of the events it folds: give one of them a field "
                    f"{field!r} marked with tag(...), or give the parameter a default"
                )
        setattr(
            made,
            _TYPE,
            DecisionModelType(made, name or cls.__name__, parameters, handlers, keys),
        )
        return made

    return decorate if cls is None else decorate(cls)


def decision_model_type(cls: type[Any]) -> DecisionModelType:
    """Return what `@decision_model` recorded about `cls`.

    Raises:
        TypeError: `cls` is not decorated with `@decision_model`.
    """
    kind: DecisionModelType | None = vars(cls).get(_TYPE)
    if kind is None:
        msg = f"{cls.__qualname__} is not a decision model: decorate it with @decision_model"
        raise TypeError(msg)
    return kind


def seen(model: object) -> Seen:
    """Return what the read that folded `model` saw.

    Raises:
        TypeError: `model` was not returned by a read (`Decisions.read`).
    """
    found: Seen | None = getattr(model, _SEEN, None)
    if found is None:
        msg = (
            f"this {type(model).__qualname__} was not read: save the models that "
            "Decisions.read returned, which know what the decision saw"
        )
        raise TypeError(msg)
    return found


def mark_seen(model: object, query: Query, result: QueryResult) -> None:
    """Note on `model` what the read that folded it with `query` saw."""
    unpositioned = {
        e.event_id: (e.event_type, frozenset(e.tags))
        for e in result.events
        if e.position == 0 and query.matches(e.event_type, e.tags)
    }
    setattr(model, _SEEN, Seen(query, result.head, MappingProxyType(unpositioned)))


def union(queries: Iterable[Query]) -> Query:
    """Return the OR of queries, each item once, in first-seen order."""
    items: dict[QueryItem, None] = {}
    for query in queries:
        items.update(dict.fromkeys(query.items))
    return Query.of(*items)
