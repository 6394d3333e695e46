"""The field types events and aggregate state may use, resolved into shapes.

Both layers use this module: the domain (`@event`, `@aggregate`) resolves a class's shape
when the class is defined, so an annotation the codec could not read back fails there and
then, and the aggregate's state fingerprint hashes the resolved shape; the codec
(`_codec.py`, a cattrs converter) builds its strict field hooks from the same shapes. It
imports neither cattrs nor orjson, so the domain stays free of the codec while both agree,
by construction, on what is storable.
"""

from __future__ import annotations

import enum
import hashlib
import types
import typing
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias
from uuid import UUID

import attrs

from esframework.errors import UnsupportedFieldTypeError

__all__ = [
    "AnyShape",
    "AttrsShape",
    "DictShape",
    "EnumShape",
    "FieldShape",
    "LeafShape",
    "SequenceShape",
    "Shape",
    "TupleShape",
    "UnionShape",
    "attrs_shape",
    "check_definition",
    "fingerprint",
]

Leaf: TypeAlias = Literal[
    "none", "str", "int", "bool", "float", "decimal", "uuid", "datetime", "date"
]
Wire: TypeAlias = Literal["null", "bool", "number", "string", "array", "object", "any"]

_LEAVES: Final[dict[Any, Leaf]] = {
    type(None): "none",
    str: "str",
    int: "int",
    bool: "bool",
    float: "float",
    Decimal: "decimal",
    UUID: "uuid",
    datetime: "datetime",
    date: "date",
}
# How each leaf is written in JSON, which decides whether union members can be told apart.
_LEAF_WIRE: Final[dict[Leaf, Wire]] = {
    "none": "null",
    "str": "string",
    "int": "number",
    "bool": "bool",
    "float": "number",  # PostgreSQL's jsonb prints 1e16 as 10000000000000000: not apart from int
    "decimal": "string",
    "uuid": "string",
    "datetime": "string",
    "date": "string",
}
_BARE: Final[dict[Any, Any]] = {
    list: list[Any],
    tuple: tuple[Any, ...],
    set: set[Any],
    frozenset: frozenset[Any],
    dict: dict[str, Any],
}


@attrs.frozen
class LeafShape:
    kind: Leaf


@attrs.frozen
class AnyShape:
    """A JSON value as Python holds it: None, bool, int, float, str, list, dict with str keys."""


@attrs.frozen
class EnumShape:
    cls: type[enum.Enum]
    values: Literal["str", "int"]


@attrs.frozen
class SequenceShape:
    container: type[Any]  # list, set, frozenset, or tuple (of any length)
    item: Shape


@attrs.frozen
class TupleShape:
    items: tuple[Shape, ...]


@attrs.frozen
class DictShape:
    key: Shape  # str, int, UUID, date or an enum: stored as JSON object keys
    value: Shape


@attrs.frozen
class UnionShape:
    members: tuple[Shape, ...]


@attrs.frozen
class FieldShape:
    name: str  # the attribute, and the JSON key
    init_name: str | None  # the __init__ parameter (attrs' alias), None for init=False
    has_default: bool
    shape: Shape


@attrs.define(eq=False)
class AttrsShape:
    """An attrs class; `fields` is filled after creation, so a class may contain itself."""

    cls: type[Any]
    fields: tuple[FieldShape, ...] = ()


Shape: TypeAlias = (
    LeafShape
    | AnyShape
    | EnumShape
    | SequenceShape
    | TupleShape
    | DictShape
    | UnionShape
    | AttrsShape
)

_KEY_LEAVES: Final = frozenset({"str", "int", "uuid", "date"})


def attrs_shape(cls: type[Any]) -> AttrsShape:
    """Resolve the shape of an attrs class, with every nested type.

    Raises:
        UnsupportedFieldTypeError: A field's type cannot be stored and read back exactly.
        NameError: An annotation names something not defined yet (a forward reference).
    """
    return _Resolver(cls.__qualname__).attrs(cls, ())


def check_definition(cls: type[Any]) -> AttrsShape | None:
    """Resolve a class's shape when it is defined, so an unstorable field fails right there.

    Returns:
        The shape, or None if an annotation is a forward reference to something not defined
        yet; the codec then resolves it on first use.

    Raises:
        UnsupportedFieldTypeError: A field's type cannot be stored and read back exactly.
    """
    try:
        return attrs_shape(cls)
    except NameError:
        return None


class _Resolver:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.seen: dict[type[Any], AttrsShape] = {}

    def fail(self, path: tuple[str, ...], reason: str) -> UnsupportedFieldTypeError:
        text = "".join(p if p.startswith("[") else f".{p}" for p in path).removeprefix(".")
        return UnsupportedFieldTypeError(self.owner, text or "(the class)", reason)

    def attrs(self, cls: type[Any], path: tuple[str, ...]) -> AttrsShape:
        found = self.seen.get(cls)
        if found is not None:
            return found
        shape = self.seen[cls] = AttrsShape(cls)
        hints = typing.get_type_hints(cls)  # NameError for a forward reference
        fields = []
        for field in attrs.fields(cls):
            here = (*path, field.name)
            if field.name not in hints:
                raise self.fail(here, "the field has no type annotation")
            fields.append(
                FieldShape(
                    name=field.name,
                    init_name=field.alias if field.init else None,
                    has_default=field.default is not attrs.NOTHING,
                    shape=self.resolve(hints[field.name], here),
                )
            )
        shape.fields = tuple(fields)
        return shape

    def resolve(self, hint: Any, path: tuple[str, ...]) -> Shape:  # noqa: C901, PLR0911, PLR0912
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            return self.resolve(args[0], path)
        if isinstance(hint, typing.NewType):
            return self.resolve(hint.__supertype__, path)
        if hint is Any:
            return AnyShape()
        if hint in _LEAVES:
            return LeafShape(_LEAVES[hint])
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return EnumShape(hint, self.enum_values(hint, path))
        if isinstance(hint, type) and attrs.has(hint):
            return self.attrs(hint, path)
        if origin in (typing.Union, types.UnionType):
            return self.union(tuple(self.resolve(a, path) for a in args), path)
        if hint in _BARE:  # a container without type arguments holds JSON values
            return self.resolve(_BARE[hint], path)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:  # noqa: PLR2004
                return SequenceShape(tuple, self.resolve(args[0], (*path, "[]")))
            if args == ((),):  # tuple[()]
                return TupleShape(())
            return TupleShape(tuple(self.resolve(a, (*path, f"[{i}]")) for i, a in enumerate(args)))
        if origin in (list, set, frozenset):
            return SequenceShape(origin, self.resolve(args[0], (*path, "[]")))
        if origin is dict:
            key = self.resolve(args[0], (*path, "[key]"))
            if not (
                isinstance(key, EnumShape)
                or (isinstance(key, LeafShape) and key.kind in _KEY_LEAVES)
            ):
                raise self.fail(
                    path, f"dict keys must be str, int, UUID, date or an enum, not {args[0]!r}"
                )
            return DictShape(key, self.resolve(args[1], (*path, "[]")))
        hint_text = getattr(hint, "__qualname__", None) or repr(hint)
        raise self.fail(
            path,
            f"{hint_text} is not a supported field type (see the supported types in the "
            "events concepts page: use list, tuple, set, frozenset, dict, attrs classes, "
            "enums, str, int, bool, float, Decimal, UUID, datetime, date, Optional, unions or Any)",
        )

    def enum_values(self, cls: type[enum.Enum], path: tuple[str, ...]) -> Literal["str", "int"]:
        kinds = {type(member.value) for member in cls}
        if kinds <= {str} and (kinds or issubclass(cls, str)):
            return "str"
        if kinds <= {int}:
            return "int"
        raise self.fail(path, f"enum {cls.__qualname__}'s values must be all str or all int")

    def union(self, members: tuple[Shape, ...], path: tuple[str, ...]) -> Shape:
        flat: list[Shape] = []
        for member in members:
            flat.extend(member.members if isinstance(member, UnionShape) else (member,))
        if any(isinstance(m, AnyShape) for m in flat):
            return AnyShape()
        by_wire: dict[Wire, list[Shape]] = {}
        for member in flat:
            by_wire.setdefault(wire_of(member), []).append(member)
        for wire, same in by_wire.items():
            if len(same) < 2:  # noqa: PLR2004
                continue
            if wire == "object" and all(isinstance(m, AttrsShape) for m in same):
                self.check_distinguishable([m for m in same if isinstance(m, AttrsShape)], path)
                continue
            names = " and ".join(describe(m) for m in same)
            raise self.fail(
                path,
                f"the union's {names} are stored alike (as JSON {wire}s), so a stored value "
                "could not be told apart on reading: keep one of them, or wrap them in attrs "
                "classes with different field names",
            )
        return UnionShape(tuple(flat))

    def check_distinguishable(self, classes: list[AttrsShape], path: tuple[str, ...]) -> None:
        # Every field is always written, so a field name no other member has identifies a
        # class; at most one member may have none (it is the one left when the others fail).
        without = [
            c.cls.__qualname__
            for c in classes
            if not unique_fields(c, [o for o in classes if o is not c])
        ]
        if len(without) > 1:
            raise self.fail(
                path,
                f"the union's attrs classes {' and '.join(without)} have no field name of "
                "their own, so a stored value could not be told apart on reading: give each a "
                "field the others lack",
            )


def unique_fields(shape: AttrsShape, others: list[AttrsShape]) -> list[str]:
    """Return the field names of `shape` that none of `others` has."""
    taken = {f.name for other in others for f in other.fields}
    return [f.name for f in shape.fields if f.name not in taken]


def wire_of(shape: Shape) -> Wire:
    """Return the JSON type a value of this shape is written as."""
    if isinstance(shape, LeafShape):
        return _LEAF_WIRE[shape.kind]
    if isinstance(shape, EnumShape):
        return "string" if shape.values == "str" else "number"
    if isinstance(shape, SequenceShape | TupleShape):
        return "array"
    if isinstance(shape, DictShape | AttrsShape):
        return "object"
    return "any"


def describe(shape: Shape) -> str:
    """Return a short, stable description of a shape, as a type annotation would read."""
    return "".join(_describe(shape, set()))


def _describe(shape: Shape, open_classes: set[type[Any]]) -> Iterator[str]:
    if isinstance(shape, LeafShape):
        yield shape.kind
    elif isinstance(shape, AnyShape):
        yield "Any"
    elif isinstance(shape, EnumShape):
        members = ",".join(f"{m.name}={m.value!r}" for m in shape.cls)
        yield f"{shape.cls.__module__}.{shape.cls.__qualname__}<{shape.values}:{members}>"
    elif isinstance(shape, SequenceShape):
        yield f"{shape.container.__name__}["
        yield from _describe(shape.item, open_classes)
        yield ", ...]" if shape.container is tuple else "]"
    elif isinstance(shape, TupleShape | DictShape | UnionShape):
        parts = (
            shape.items
            if isinstance(shape, TupleShape)
            else shape.members
            if isinstance(shape, UnionShape)
            else (shape.key, shape.value)
        )
        yield "union[" if isinstance(shape, UnionShape) else f"{type(shape).__name__}["
        for i, part in enumerate(parts):
            yield ", " if i else ""
            yield from _describe(part, open_classes)
        yield "]"
    else:
        yield from _describe_attrs(shape, open_classes)


def _describe_attrs(shape: AttrsShape, open_classes: set[type[Any]]) -> Iterator[str]:
    yield f"{shape.cls.__module__}.{shape.cls.__qualname__}"
    if shape.cls in open_classes:  # a class inside itself: its fields are described above
        return
    open_classes.add(shape.cls)
    yield "{"
    for i, field in enumerate(shape.fields):
        yield ", " if i else ""
        init = "" if field.init_name is not None else " (init=False)"
        yield f"{field.name}{init}: "
        yield from _describe(field.shape, open_classes)
    yield "}"
    open_classes.discard(shape.cls)


def fingerprint(shape: AttrsShape) -> str:
    """Return a short hash of the full resolved shape: nested classes, containers, enums."""
    return hashlib.sha256(describe(shape).encode()).hexdigest()[:16]
