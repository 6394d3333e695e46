"""Tags on events: the `tag(...)` field specifier and the tags an event carries.

A tag is a string such as ``"course:c1"`` stored with an event, so that a query (see
`Query`) can find every event about one course, whatever stream it is in. An event class
declares its tags by marking fields: ``course_id: str = tag("course")`` gives each event the
tag ``"course:" + course_id``. Deriving tags from fields keeps them true: the tag cannot say
one course while the data says another.
"""

from __future__ import annotations

import enum
from typing import Any, Final
from uuid import UUID

import attrs

from esframework._shapes import (
    AttrsShape,
    EnumShape,
    LeafShape,
    SequenceShape,
    Shape,
    UnionShape,
)
from esframework.errors import DefinitionError

__all__ = ["tag", "tag_fields", "tag_value", "tags_of"]

_TAG: Final = "esframework.tag"  # the attrs metadata key that marks a tagged field
_SCALARS: Final = frozenset({"str", "int", "uuid"})

_FIELDS: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def tag(name: str, *, default: Any = attrs.NOTHING) -> Any:
    """Mark an event field whose value tags each event: ``course_id: str = tag("course")``.

    The event then carries the tag ``f"{name}:{value}"`` (``"course:c1"``). A field may hold
    a `str`, an `int`, a `UUID` or an enum (its value is used), None (no tag), or a list,
    tuple, set or frozenset of those (one tag per member). A field specifier of `@event`'s
    `dataclass_transform`: type checkers treat it like `attrs.field`, with no plugin.

    Args:
        name: What the tag says the value is, such as ``"course"`` or ``"student"``.
        default: The field's default, if it has one.

    Raises:
        DefinitionError: `name` is empty or holds a NUL character.
    """
    if not name or "\x00" in name:
        raise DefinitionError(f"tag(...) needs a name of 1 or more characters, got {name!r}")
    return attrs.field(default=default, metadata={_TAG: name})


def tag_value(name: str, value: str | int | UUID | enum.Enum) -> str:
    """Return the tag a `tag(name)` field holding `value` gives: ``tag_value("course", "c1")``
    is ``"course:c1"``. Queries name tags this way."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, str | int | UUID):
        msg = f"a tag value is a str, an int, a UUID or an enum, got {value!r}"
        raise TypeError(msg)
    return f"{name}:{value}"


def tag_fields(cls: type[Any]) -> tuple[tuple[str, str], ...]:
    """Return `(field name, tag name)` for each tagged field of an event class, in order."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(
            (field.name, field.metadata[_TAG])
            for field in attrs.fields(cls)
            if _TAG in field.metadata
        )
    return found


def tags_of(event: object) -> list[str]:
    """Return the tags an event's fields give it (unsorted, possibly repeated)."""
    fields = tag_fields(type(event))
    if not fields:
        return []
    tags: list[str] = []
    for field_name, name in fields:
        value = getattr(event, field_name)
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            tags.extend(tag_value(name, member) for member in value if member is not None)
        else:
            tags.append(tag_value(name, value))
    return tags


def check_tag_fields(shape: AttrsShape | None) -> None:
    """Refuse, when an event class is defined, a tagged field whose type makes no tag.

    Args:
        shape: The class's resolved shape; None if it could not be resolved yet (a forward
            reference): a bad value is then refused when an event is encoded.

    Raises:
        DefinitionError: A tagged field's type is not one `tag` takes.
    """
    if shape is None:
        return
    for field in shape.fields:
        name = _tag_name(shape.cls, field.name)
        if name is not None and not _taggable(field.shape, members=True):
            raise DefinitionError(
                f"field {field.name!r} of {shape.cls.__qualname__} is tagged {name!r} but its "
                "type makes no tag: tag a str, int, UUID or enum field (optional, or a "
                "collection of them)"
            )


def _tag_name(cls: type[Any], field_name: str) -> str | None:
    name: str | None = attrs.fields_dict(cls)[field_name].metadata.get(_TAG)
    return name


def _taggable(shape: Shape, *, members: bool) -> bool:
    if isinstance(shape, LeafShape):
        return shape.kind in _SCALARS
    if isinstance(shape, EnumShape):
        return True
    if isinstance(shape, UnionShape):  # X | None, or a union of taggable scalars
        return all(
            (isinstance(m, LeafShape) and m.kind == "none") or _taggable(m, members=members)
            for m in shape.members
        )
    if isinstance(shape, SequenceShape) and members:
        return _taggable(shape.item, members=False)
    return False
