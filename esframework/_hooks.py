"""The codec's hooks for containers, unions and attrs classes, built from resolved shapes.

`_codec.py` registers these on its cattrs converter: the container and union hooks become
the per-field overrides of cattrs' generated class functions, and the class wrappers add what
those functions leave out: the exact type check on the way in, the field path of an error,
and `init=False` fields on frozen classes.

A failure inside a class's generated function carries no field name (cattrs' functions are
built for speed, not for reporting), so the wrapper finds it by running the field hooks again
one by one, in declaration order: that costs nothing until a value is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from esframework._json import Decoder, Encoder, Invalid, NeedsExactInts, expected
from esframework._leaves import LEAF_CODECS, LEAF_TYPES
from esframework._shapes import (
    AttrsShape,
    DictShape,
    EnumShape,
    LeafShape,
    SequenceShape,
    Shape,
    TupleShape,
    wire_of,
)

__all__ = [
    "ClassDecoderParts",
    "attrs_union_decoder",
    "class_decoder",
    "class_encoder",
    "dict_decoder",
    "dict_encoder",
    "recursion_guard",
    "sequence_decoder",
    "sequence_encoder",
    "tuple_decoder",
    "tuple_encoder",
    "union_decoder",
    "union_encoder",
]

_MAX_RECURSION: Final = 64  # how deep a class may contain itself (a tree of nodes)
_setattr: Final = object.__setattr__  # frozen classes too

# A field's name, its decoder, and whether it must be present (it has no default).
ClassDecoderParts = tuple[tuple[str, Decoder, bool], ...]


def class_encoder(
    cls: type[Any], generated: Encoder, fields: tuple[tuple[str, Encoder], ...]
) -> Encoder:
    """Wrap cattrs' generated unstructure function of `cls` with its type check and paths."""
    name = cls.__qualname__

    def encode(obj: Any) -> Any:
        if type(obj) is not cls:  # a subclass has other fields; another class, other rules
            raise expected(name, obj)
        try:
            return generated(obj)
        except Invalid as error:
            raise _first_encode_error(obj, fields) or error from None

    return encode


def _first_encode_error(obj: Any, fields: tuple[tuple[str, Encoder], ...]) -> Invalid | None:
    for name, encode in fields:
        try:
            encode(getattr(obj, name))
        except Invalid as error:
            error.path.append(name)
            return error
    return None


def class_decoder(
    cls: type[Any], generated: Decoder, fields: ClassDecoderParts, late: ClassDecoderParts
) -> Decoder:
    """Wrap cattrs' generated structure function of `cls`; `late` are its init=False fields."""
    name = f"a JSON object for {cls.__qualname__}"

    def decode(data: Any, _: object = None) -> Any:
        if type(data) is not dict:
            raise expected(name, data)
        try:
            obj = generated(data)
            for field, decode_field, required in late:
                if field in data:
                    _setattr(obj, field, decode_field(data[field]))
                elif required:
                    raise KeyError(field)  # noqa: TRY301 -- reported below, as any missing field
        except (KeyError, Invalid) as error:  # cattrs reads required fields as data[name]
            raise _first_decode_error(data, fields) or error from None
        return obj

    return decode


def _first_decode_error(data: dict[str, Any], fields: ClassDecoderParts) -> Invalid | None:
    for name, decode, required in fields:
        if name not in data:
            if not required:  # absent: the default (a field added since, say)
                continue
            error = Invalid("the field is missing")
        else:
            try:
                decode(data[name])
                continue
            except Invalid as refused:
                error = refused
        error.path.append(name)
        return error
    return None


def recursion_guard(built: Mapping[type[Any], Decoder], cls: type[Any]) -> Decoder:
    """Stand in for a class's hook while it is being built: only a class inside itself calls it.

    The depth limit keeps a deep tree from overflowing Python's stack.
    """
    local = threading.local()

    def recurse(value: Any, _: object = None) -> Any:
        depth = getattr(local, "depth", 0)
        if depth >= _MAX_RECURSION:
            msg = f"{cls.__qualname__} is nested in itself more than {_MAX_RECURSION} levels deep"
            raise Invalid(msg)
        local.depth = depth + 1
        try:
            return built[cls](value)
        finally:
            local.depth = depth

    return recurse


def sequence_encoder(container: type[Any], item: Encoder) -> Encoder:
    """Return the hook of a list, set, frozenset or tuple of any length."""
    name = container.__name__

    def encode(value: Any) -> list[Any]:
        if type(value) is not container:
            raise expected(name, value)
        try:
            return [item(x) for x in value]
        except Invalid as error:
            error.path.append(f"[{_failing_index(item, value)}]")
            raise

    return encode


def _failing_index(item: Encoder, values: Any) -> int | str:
    for i, value in enumerate(values):
        try:
            item(value)
        except Invalid:
            return i
    return "?"


def sequence_decoder(container: type[Any], item: Decoder) -> Decoder:
    """Return the hook reading a JSON array into a list, set, frozenset or tuple."""

    def decode(value: Any, _: object = None) -> Any:
        if type(value) is not list:
            raise expected("a JSON array", value)
        try:
            items = [item(x) for x in value]
        except Invalid as error:
            error.path.append(f"[{_failing_index(item, value)}]")
            raise
        return items if container is list else container(items)

    return decode


def tuple_encoder(items: tuple[Encoder, ...]) -> Encoder:
    """Return the hook of a fixed-length tuple."""

    def encode(value: Any) -> list[Any]:
        if type(value) is not tuple or len(value) != len(items):
            raise expected(f"a tuple of {len(items)}", value)
        out = []
        for i, (encode_item, x) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(encode_item(x))
            except Invalid as error:
                error.path.append(f"[{i}]")
                raise
        return out

    return encode


def tuple_decoder(items: tuple[Decoder, ...]) -> Decoder:
    """Return the hook reading a JSON array into a fixed-length tuple."""

    def decode(value: Any, _: object = None) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != len(items):
            raise expected(f"a JSON array of {len(items)}", value)
        out = []
        for i, (decode_item, x) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(decode_item(x))
            except Invalid as error:
                error.path.append(f"[{i}]")
                raise
        return tuple(out)

    return decode


def dict_encoder(key: Encoder, value: Encoder) -> Encoder:
    """Return the hook of a dict; `key` writes each key as its one canonical string."""

    def encode(mapping: Any) -> dict[str, Any]:
        if type(mapping) is not dict:
            raise expected("dict", mapping)
        out = {}
        for k, v in mapping.items():
            try:
                out[key(k)] = value(v)
            except Invalid as error:
                error.path.append(f"[{k!r}]")
                raise
        return out

    return encode


def dict_decoder(key: Decoder, value: Decoder) -> Decoder:
    """Return the hook reading a JSON object into a dict, keys decoded by `key`."""

    def decode(mapping: Any, _: object = None) -> dict[Any, Any]:
        if type(mapping) is not dict:
            raise expected("a JSON object", mapping)
        out = {}
        for k, v in mapping.items():
            try:
                out[key(k)] = value(v)
            except Invalid as error:
                error.path.append(f"[{k!r}]")
                raise
        return out

    return decode


def python_type(shape: Shape) -> type[Any]:
    """Return the one Python type a union member's values have."""
    if isinstance(shape, LeafShape):
        return LEAF_TYPES[shape.kind]
    if isinstance(shape, EnumShape | AttrsShape):
        return shape.cls
    if isinstance(shape, SequenceShape):
        return shape.container
    if isinstance(shape, TupleShape):
        return tuple
    if isinstance(shape, DictShape):
        return dict
    msg = f"no Python type for {shape!r}"  # Any and nested unions are flattened by _shapes
    raise AssertionError(msg)


def union_encoder(members: list[tuple[Shape, Encoder]]) -> Encoder:
    """Return the hook of a union: the value's exact type picks the member."""
    by_type = {python_type(shape): encode for shape, encode in members}
    if float in by_type and int not in by_type:
        by_type[int] = LEAF_CODECS["float"][0]  # an int where a float is declared: PEP 484
    names = " or ".join(python_type(shape).__qualname__ for shape, _ in members)

    def encode(value: object) -> Any:
        found = by_type.get(type(value))
        if found is None:
            raise expected(names, value)
        return found(value)

    return encode


def json_types(shape: Shape) -> tuple[type[Any], ...]:
    """Return the Python types orjson parses a value of this shape into."""
    if isinstance(shape, LeafShape) and shape.kind == "float":
        return (float, int)  # jsonb prints 1e16 as 10000000000000000
    return _JSON_TYPES[wire_of(shape)]


_JSON_TYPES: Final[dict[str, tuple[type[Any], ...]]] = {
    "number": (int,),
    "null": (type(None),),
    "bool": (bool,),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


def union_decoder(members: Sequence[tuple[Shape, Decoder]], objects: Decoder | None) -> Decoder:
    """Return the hook of a union: the JSON type picks the member; `objects` reads classes."""
    by_json: dict[type[Any], Decoder] = {}
    for shape, decode in members:
        for json_type in json_types(shape):
            by_json[json_type] = decode
    if int in by_json and str not in by_json:
        by_json[str] = by_json[int]  # earlier versions wrote ints beyond 64 bits as strings
    if objects is not None:
        by_json[dict] = objects
    names = ", ".join(sorted({t.__name__ for t in by_json}))

    def decode_union(value: object, _: object = None) -> Any:
        found = by_json.get(type(value))
        if found is None:
            if type(value) is float and int in by_json:
                raise NeedsExactInts
            raise expected(f"one of the union's JSON types ({names})", value)
        return found(value)

    return decode_union


def attrs_union_decoder(classes: list[tuple[list[str], Decoder]]) -> Decoder:
    """Return the hook telling a union's attrs classes apart by their own field names.

    Every field is written, so a key only one member has tells which class it was; the one
    member without such a key (there is at most one, see _shapes) is what remains.
    """
    marked = [(frozenset(keys), decode) for keys, decode in classes if keys]
    fallback = next((decode for keys, decode in classes if not keys), None)

    def decode(value: dict[str, Any], _: object = None) -> Any:
        for keys, decode_member in marked:
            if not keys.isdisjoint(value):
                return decode_member(value)
        if fallback is None:
            raise expected("an object of one of the union's classes", value)
        return fallback(value)

    return decode
