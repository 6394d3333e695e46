"""Typed events: the `@event` decorator and the registry of event type names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs
from typing_extensions import dataclass_transform

from esframework._personal._fields import check_personal_fields, personal
from esframework._shapes import check_definition
from esframework._tags import check_tag_fields, tag
from esframework.errors import DuplicateEventTypeError

__all__ = ["EventType", "event", "event_type_of", "registry"]

T = TypeVar("T")


@attrs.frozen
class EventType:
    """The stable name and schema version an event class is stored under.

    Attributes:
        name: The name stored with each event, the class's name unless `@event(name=...)`
            gives another.
        version: The class's schema version (from 1), stored with each event; raise it
            with an upcaster when the fields change.
    """

    name: str
    version: int


class _Registry:
    """Maps stored `(name, version)` pairs to event classes and back.

    One registry per process: an event type name is part of the stored data, so it must
    mean the same class everywhere in the application.
    """

    def __init__(self) -> None:
        self.generation = 0  # changes with every registration, so caches know to refresh
        self._by_type: dict[tuple[str, int], type[Any]] = {}
        self._current: dict[str, int] = {}
        self._of_class: dict[type[Any], EventType] = {}

    def add(self, cls: type[Any], name: str, version: int) -> None:
        existing = self._by_type.get((name, version))
        if existing is not None and not _same_definition(existing, cls):
            raise DuplicateEventTypeError(name, version, _qualified(existing), _qualified(cls))
        if existing is not None:
            del self._of_class[existing]  # a re-executed definition replaces the old one
        self._by_type[name, version] = cls
        self._current[name] = max(version, self._current.get(name, version))
        self._of_class[cls] = EventType(name, version)
        self.generation += 1

    def of_class(self, cls: type[Any]) -> EventType | None:
        return self._of_class.get(cls)

    def current_version(self, name: str) -> int | None:
        """Return the newest schema version registered under `name`, or None."""
        return self._current.get(name)

    def get(self, name: str, version: int) -> type[Any] | None:
        return self._by_type.get((name, version))


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _same_definition(a: type[Any], b: type[Any]) -> bool:
    # Reloading a module (or re-running a notebook cell) defines the class again.
    return _qualified(a) == _qualified(b)


registry = _Registry()


def event_type_of(cls: type[Any]) -> EventType:
    """Return the registered type of an event class.

    Raises:
        TypeError: `cls` is not decorated with `@event`.
    """
    found = registry.of_class(cls)
    if found is None:
        msg = f"{cls.__qualname__} is not an event class: decorate it with @event"
        raise TypeError(msg)
    return found


@overload
def event(cls: type[T], /) -> type[T]: ...


@overload
def event(*, name: str | None = None, version: int = 1) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(
    frozen_default=True, kw_only_default=True, field_specifiers=(attrs.field, personal, tag)
)
def event(
    cls: type[T] | None = None, /, *, name: str | None = None, version: int = 1
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make a class an event: a frozen, slotted, keyword-only attrs class, registered for storage.

    Args:
        cls: The class, when the decorator is used bare (`@event`).
        name: The stable type name stored with each event. Defaults to the class name; set
            it explicitly so that renaming the class does not orphan stored events.
        version: The schema version of this shape of the event, starting at 1. Raise it when
            the fields change, and register an upcaster from the previous version.

    Raises:
        DuplicateEventTypeError: Another class is registered under the same name and version.
        UnsupportedFieldTypeError: A field's type cannot be stored and read back exactly
            (an unsupported type, or a union whose members are stored alike).
        DefinitionError: A `personal` field names a subject field the class lacks, or a
            field marked with `tag(...)` has a type that makes no tag.
    """
    if version < 1:
        msg = f"event schema versions start at 1, got {version}"
        raise ValueError(msg)

    def decorate(cls: type[T]) -> type[T]:
        made: type[T] = attrs.frozen(cls, slots=True, kw_only=True)
        check_tag_fields(check_definition(made))
        check_personal_fields(made)
        registry.add(made, name or cls.__name__, version)
        return made

    return decorate if cls is None else decorate(cls)
