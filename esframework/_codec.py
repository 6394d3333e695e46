"""Compiled, checking encoders and decoders for event and state classes.

The codec used to unstructure with cattrs, which passes values through unchecked: an int in a
`str` field was written, and every later load failed. Here the encoder checks what the
decoder checks, from the same resolved shape (`_shapes.py`): whatever `encode` accepts,
`decode` reads back equal, types included; anything else is refused before writing.

One encoder and one decoder function is generated per attrs class, once (as cattrs does), with
the checks of plain fields inlined, so the save path pays one call per event plus one per
field of a richer type.

Notes on JSON, where the codec departs from what orjson does by default:

- orjson refuses ints beyond 64 bits and reads them back as floats: they are written as raw
  JSON numbers (`orjson.Fragment`). A decoder that meets a float where an int is declared (or
  a float of 1e16 or more inside an `Any` value, which the encoder never writes) raises
  `NeedsExactInts`, and the caller parses the document again with the standard library's
  `json`, which reads every integer exactly. Documents without big ints pay nothing for it.
- orjson writes NaN and infinities as null: they are refused, in floats and in Decimals.
- PostgreSQL's jsonb prints a float of 1e16 or more as a bare integer: declared `float` fields
  read any number as a float, but inside an `Any`-typed value such floats are refused, since
  they would load back as ints.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from esframework._shapes import (
    AnyShape,
    AttrsShape,
    DictShape,
    EnumShape,
    LeafShape,
    SequenceShape,
    Shape,
    TupleShape,
    UnionShape,
    unique_fields,
    wire_of,
)

__all__ = [
    "Codec",
    "Invalid",
    "NeedsExactInts",
    "dumps_json_value",
    "loads",
    "loads_exact",
    "loads_json_value",
]

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_INT_MIN: Final = -(2**63)
_UINT_MAX: Final = 2**64 - 1
_MAX_ANY_DEPTH: Final = 100  # orjson refuses documents nested deeper than 255 levels
_MAX_RECURSION: Final = 64  # how deep a class may contain itself (a tree of nodes)
_FLOAT_AS_INT: Final = 1e16  # from here jsonb prints floats without a fraction
_INT_TEXT: Final = re.compile(r"-?[0-9]+")
_MISSING: Final = object()


class Invalid(ValueError):  # noqa: N818 -- internal: becomes EventEncodingError or CorruptEventError
    """A value does not fit its shape; `path` collects the field names, innermost first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    @property
    def where(self) -> str | None:
        if not self.path:
            return None
        text = "".join(p if p.startswith("[") else f".{p}" for p in reversed(self.path))
        return text.removeprefix(".")


def _got(value: object) -> str:
    text = repr(value)
    if len(text) > 60:  # noqa: PLR2004
        text = text[:57] + "..."
    return f"{type(value).__qualname__} {text}"


def _expected(what: str, value: object) -> Invalid:
    return Invalid(f"expected {what}, got {_got(value)}")


class NeedsExactInts(Exception):  # noqa: N818 -- a signal, not an error
    """The document holds an int beyond 64 bits, which orjson read as a float: parse again."""


def loads(text: str | bytes) -> Any:
    """Parse JSON quickly (orjson); integers beyond 64 bits come back as floats."""
    return orjson.loads(text)


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON reading every integer exactly (the standard library's parser)."""
    return json.loads(text)


def loads_json_value(text: str | bytes) -> Any:
    """Parse a JSON value encoded by `dumps_json_value`, big ints included."""
    value = orjson.loads(text)
    return loads_exact(text) if _holds_lost_int(value) else value


def _holds_lost_int(value: Any) -> bool:
    # The encoder refuses floats of 1e16 or more in Any values: such a float is a big int.
    kind = type(value)
    if kind is float:
        return bool(abs(value) >= _FLOAT_AS_INT)
    if kind is list:
        return any(_holds_lost_int(item) for item in value)
    if kind is dict:
        return any(_holds_lost_int(item) for item in value.values())
    return False


def _dec_any(value: Any) -> Any:
    if _holds_lost_int(value):
        raise NeedsExactInts
    return value


def _big(value: int) -> Any:
    return value if _INT_MIN <= value <= _UINT_MAX else orjson.Fragment(str(value).encode())


# Encoders of leaves. Each checks the exact type: a subclass (bool for int, a StrEnum for str)
# would load back as the base type.


def _enc_none(value: object) -> None:
    if value is not None:
        raise _expected("None", value)


def _enc_str(value: object) -> str:
    if type(value) is not str:
        raise _expected("str", value)
    return value


def _enc_bool(value: object) -> bool:
    if type(value) is not bool:
        raise _expected("bool", value)
    return value


def _enc_int(value: object) -> Any:
    if type(value) is not int:
        raise _expected("int", value)
    return _big(value)


def _enc_float(value: object) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            msg = f"{value} is not a finite number, and JSON cannot store it"
            raise Invalid(msg)
        return value
    # An int where a float is declared is fine for type checkers (PEP 484's numeric tower):
    # store it as the float it equals, which is what loads back.
    if type(value) is int and (as_float := float(value)) == value:
        return as_float
    raise _expected("float", value)


def _enc_decimal(value: object) -> str:
    if type(value) is not Decimal:
        raise _expected("Decimal", value)
    if not value.is_finite():
        msg = f"Decimal({str(value)!r}) is not a finite number, and cannot be stored"
        raise Invalid(msg)
    return str(value)


def _enc_uuid(value: object) -> str:
    if type(value) is not UUID:
        raise _expected("UUID", value)
    return str(value)


def _enc_date(value: object) -> str:
    if type(value) is not date:
        raise _expected("date", value)
    return value.isoformat()


def _enc_datetime(value: object) -> str:
    if type(value) is not datetime:
        raise _expected("datetime", value)
    zone = value.tzinfo
    if zone is None or type(zone) is timezone:
        return value.isoformat()
    if type(zone) is ZoneInfo and zone.key is not None:
        # Keep the zone, in RFC 9557's notation: 2026-03-29T03:30:00+02:00[Europe/Paris].
        return f"{value.isoformat()}[{zone.key}]"
    msg = (
        f"the time zone {zone!r} cannot be stored: use a zoneinfo.ZoneInfo with a key, "
        "a datetime.timezone, or a naive datetime"
    )
    raise Invalid(msg)


def _dec_none(value: object) -> None:
    if value is not None:
        raise _expected("null", value)


def _dec_str(value: object) -> str:
    if type(value) is not str:
        raise _expected("a string", value)
    return value


def _dec_bool(value: object) -> bool:
    if type(value) is not bool:
        raise _expected("true or false", value)
    return value


def _dec_int(value: object) -> int:
    if type(value) is int:
        return value
    if type(value) is float:
        raise NeedsExactInts
    # Earlier versions stored ints beyond 64 bits as decimal strings.
    if type(value) is str and _INT_TEXT.fullmatch(value):
        return int(value)
    raise _expected("an integer", value)


def _dec_float(value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is int:  # jsonb prints 1e16 as 10000000000000000
        return float(value)
    raise _expected("a number", value)


def _dec_decimal(value: object) -> Decimal:
    if type(value) is str or type(value) is int:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise _expected("a decimal string", value)


def _dec_uuid(value: object) -> UUID:
    if type(value) is str:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise _expected("a UUID string", value)


def _dec_date(value: object) -> date:
    if type(value) is str:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _expected("an ISO 8601 date", value)


def _dec_datetime(value: object) -> datetime:
    if type(value) is not str:
        raise _expected("an ISO 8601 date and time", value)
    text, key = value, None
    if value.endswith("]") and "[" in value:
        text, _, key = value[:-1].partition("[")
    try:
        parsed = datetime.fromisoformat(text)
        zone = None if key is None else ZoneInfo(key)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise _expected("an ISO 8601 date and time", value) from error
    if zone is None:
        return parsed
    wall = parsed.replace(tzinfo=None)
    for fold in (0, 1):  # the stored offset tells which of a repeated hour it was
        candidate = wall.replace(tzinfo=zone, fold=fold)
        if candidate.utcoffset() == parsed.utcoffset():
            return candidate
    return parsed.astimezone(zone)  # the zone's rules changed since: keep the instant


_LEAF_CODECS: Final[dict[str, tuple[Encoder, Decoder]]] = {
    "none": (_enc_none, _dec_none),
    "str": (_enc_str, _dec_str),
    "int": (_enc_int, _dec_int),
    "bool": (_enc_bool, _dec_bool),
    "float": (_enc_float, _dec_float),
    "decimal": (_enc_decimal, _dec_decimal),
    "uuid": (_enc_uuid, _dec_uuid),
    "datetime": (_enc_datetime, _dec_datetime),
    "date": (_enc_date, _dec_date),
}
_LEAF_TYPES: Final[dict[str, type[Any]]] = {
    "none": type(None),
    "str": str,
    "int": int,
    "bool": bool,
    "float": float,
    "decimal": Decimal,
    "uuid": UUID,
    "datetime": datetime,
    "date": date,
}


def _enc_any(value: Any, depth: int = 0) -> Any:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _big(value)
    if kind is float:
        return _enc_any_float(value)
    if depth >= _MAX_ANY_DEPTH:
        msg = f"the value is nested more than {_MAX_ANY_DEPTH} levels deep"
        raise Invalid(msg)
    if kind is list:
        return _enc_any_list(value, depth)
    if kind is dict:
        return _enc_any_dict(value, depth)
    msg = (
        "Any-typed values and metadata hold only JSON values (None, bool, int, float, str, "
        f"list, dict with str keys), which load back as they were; got {_got(value)}"
    )
    raise Invalid(msg)


def _enc_any_float(value: float) -> float:
    if not math.isfinite(value):
        msg = f"{value} is not a finite number, and JSON cannot store it"
        raise Invalid(msg)
    if abs(value) >= _FLOAT_AS_INT:
        msg = (
            f"the float {value!r} in an Any-typed value would load back as an int (JSON "
            "stores it without a fraction): declare the field float"
        )
        raise Invalid(msg)
    return value


def _enc_any_list(value: list[Any], depth: int) -> list[Any]:
    out = []
    for i, item in enumerate(value):
        try:
            out.append(_enc_any(item, depth + 1))
        except Invalid as error:
            error.path.append(f"[{i}]")
            raise
    return out


def _enc_any_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            raise _expected("str keys in an Any-typed dict", key)
        try:
            out[key] = _enc_any(item, depth + 1)
        except Invalid as error:
            error.path.append(f"[{key!r}]")
            raise
    return out


def dumps_json_value(value: object) -> str:
    """Encode a plain JSON value (metadata's `extra`) with the rules of `Any`-typed fields.

    Raises:
        Invalid: The value would not load back equal.
    """
    return orjson.dumps(_enc_any(value)).decode()


class Codec:
    """Compiles and caches one encoder and one decoder per attrs class."""

    def __init__(self) -> None:
        self._encoders: dict[type[Any], Encoder] = {}
        self._decoders: dict[type[Any], Decoder] = {}

    def encoder(self, shape: AttrsShape) -> Encoder:
        """Return the function turning an instance into JSON-ready values (raises Invalid)."""
        return self._encoder(shape)

    def decoder(self, shape: AttrsShape) -> Decoder:
        """Return the function turning parsed JSON into an instance (raises Invalid)."""
        return self._decoder(shape)

    def _encoder(self, shape: Shape) -> Encoder:  # noqa: PLR0911
        if isinstance(shape, LeafShape):
            return _LEAF_CODECS[shape.kind][0]
        if isinstance(shape, AnyShape):
            return _enc_any
        if isinstance(shape, EnumShape):
            return _enum_encoder(shape)
        if isinstance(shape, SequenceShape):
            return _sequence_encoder(shape.container, self._encoder(shape.item))
        if isinstance(shape, TupleShape):
            return _tuple_encoder(tuple(self._encoder(item) for item in shape.items))
        if isinstance(shape, DictShape):
            return _dict_encoder(_key_encoder(shape.key), self._encoder(shape.value))
        if isinstance(shape, UnionShape):
            return self._union_encoder(shape)
        found = self._encoders.get(shape.cls)
        if found is None:
            self._encoders[shape.cls] = _recursion_guard(self._encoders, shape.cls)
            found = self._encoders[shape.cls] = self._attrs_encoder(shape)
        return found

    def _decoder(self, shape: Shape) -> Decoder:  # noqa: PLR0911
        if isinstance(shape, LeafShape):
            return _LEAF_CODECS[shape.kind][1]
        if isinstance(shape, AnyShape):
            return _dec_any
        if isinstance(shape, EnumShape):
            return _enum_decoder(shape)
        if isinstance(shape, SequenceShape):
            return _sequence_decoder(shape.container, self._decoder(shape.item))
        if isinstance(shape, TupleShape):
            return _tuple_decoder(tuple(self._decoder(item) for item in shape.items))
        if isinstance(shape, DictShape):
            return _dict_decoder(_key_decoder(shape.key), self._decoder(shape.value))
        if isinstance(shape, UnionShape):
            return self._union_decoder(shape)
        found = self._decoders.get(shape.cls)
        if found is None:
            self._decoders[shape.cls] = _recursion_guard(self._decoders, shape.cls)
            found = self._decoders[shape.cls] = self._attrs_decoder(shape)
        return found

    def _attrs_encoder(self, shape: AttrsShape) -> Encoder:
        # Generated, as cattrs does: plain fields are checked inline, others call their encoder.
        names: dict[str, Any] = {**_INLINE_NAMES, "cls": shape.cls}
        names["expected_class"] = _expected_class(shape.cls)
        lines = [
            "def encode(obj):",
            "    if type(obj) is not cls:",
            "        raise expected_class(obj)",
        ]
        lines += ["    f = None", "    try:", "        pass"]
        out = []
        for i, field in enumerate(shape.fields):
            value = f"v{i}"
            lines += [f"        f = {field.name!r}", f"        {value} = obj.{field.name}"]
            names[f"enc{i}"] = self._encoder(field.shape)
            inline = _inline(_INLINE_ENCODE, field.shape)
            lines += [f"        {line}".format(v=value, fn=f"enc{i}") for line in inline]
            out.append(f"{field.name!r}: {value}")
        lines += [
            "    except Invalid as error:",
            "        error.path.append(f)",
            "        raise",
            f"    return {{{', '.join(out)}}}",
        ]
        return _compile(lines, names, f"encode_{shape.cls.__name__}")

    def _attrs_decoder(self, shape: AttrsShape) -> Decoder:
        names: dict[str, Any] = {**_INLINE_NAMES, "cls": shape.cls, "MISSING": _MISSING}
        names["setattr"] = object.__setattr__
        lines = [
            "def decode(data):",
            "    if type(data) is not dict:",
            f"        raise expected('a JSON object for {shape.cls.__qualname__}', data)",
            "    f = None",
            "    kw = {}",
            "    later = []",
            "    try:",
            "        pass",
        ]
        arguments = []
        for i, field in enumerate(shape.fields):
            value = f"v{i}"
            names[f"dec{i}"] = self._decoder(field.shape)
            inline = [
                line.format(v=value, fn=f"dec{i}") for line in _inline(_INLINE_DECODE, field.shape)
            ]
            lines.append(f"        f = {field.name!r}")
            if field.has_default:  # absent: the default (a field added since, say)
                lines += [
                    f"        {value} = data.get({field.name!r}, MISSING)",
                    f"        if {value} is not MISSING:",
                ]
                lines += [f"            {line}" for line in inline]
                target = (
                    f"kw[{field.init_name!r}] = {value}"
                    if field.init_name is not None
                    else f"later.append(({field.name!r}, {value}))"
                )
                lines.append(f"            {target}")
                continue
            lines.append(f"        {value} = data[{field.name!r}]")
            lines += [f"        {line}" for line in inline]
            if field.init_name is None:  # init=False: set once the instance exists
                lines.append(f"        later.append(({field.name!r}, {value}))")
            else:
                arguments.append(f"{field.init_name}={value}")
        lines += [
            "    except KeyError:",
            "        error = Invalid('the field is missing')",
            "        error.path.append(f)",
            "        raise error from None",
            "    except Invalid as error:",
            "        error.path.append(f)",
            "        raise",
            f"    obj = cls({''.join(a + ', ' for a in arguments)}**kw)",
            "    for name, value in later:",
            "        setattr(obj, name, value)",  # object.__setattr__: frozen classes too
            "    return obj",
        ]
        return _compile(lines, names, f"decode_{shape.cls.__name__}")

    def _union_encoder(self, shape: UnionShape) -> Encoder:
        by_type: dict[type[Any], Encoder] = {}
        for member in shape.members:
            by_type[_python_type(member)] = self._encoder(member)
        if float in by_type and int not in by_type:
            by_type[int] = _enc_float  # an int where a float is declared, as above
        expected = " or ".join(_python_type(member).__qualname__ for member in shape.members)

        def encode(value: object) -> Any:
            found = by_type.get(type(value))
            if found is None:
                raise _expected(expected, value)
            return found(value)

        return encode

    def _union_decoder(self, shape: UnionShape) -> Decoder:
        by_json: dict[type[Any], Decoder] = {}
        classes: list[AttrsShape] = []
        for member in shape.members:
            if isinstance(member, AttrsShape):
                classes.append(member)
                continue
            decode = self._decoder(member)
            for json_type in _json_types(member):
                by_json[json_type] = decode
        if int in by_json and str not in by_json:
            by_json[str] = by_json[int]  # earlier versions wrote ints beyond 64 bits as strings
        if classes:
            by_json[dict] = _attrs_union_decoder(
                [
                    (unique_fields(c, [o for o in classes if o is not c]), self._decoder(c))
                    for c in classes
                ]
            )
        names = ", ".join(sorted({t.__name__ for t in by_json}))

        def decode_union(value: object) -> Any:
            found = by_json.get(type(value))
            if found is None:
                if type(value) is float and int in by_json:
                    raise NeedsExactInts
                raise _expected(f"one of the union's JSON types ({names})", value)
            return found(value)

        return decode_union


def _json_types(shape: Shape) -> tuple[type[Any], ...]:
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

# Inline checks for the commonest leaves in generated functions: `{v}` is the value's variable,
# `{fn}` the field's own encoder or decoder, called where the inline check cannot decide.
_INLINE_ENCODE: Final[dict[str, tuple[str, ...]]] = {
    "str": ("if type({v}) is not str:", "    raise expected('str', {v})"),
    "bool": ("if type({v}) is not bool:", "    raise expected('bool', {v})"),
    "int": ("if type({v}) is not int or not INT_MIN <= {v} <= UINT_MAX:", "    {v} = {fn}({v})"),
    "float": ("if type({v}) is not float or not isfinite({v}):", "    {v} = {fn}({v})"),
    "decimal": (
        "if type({v}) is not Decimal or not {v}.is_finite():",
        "    {fn}({v})",
        "{v} = str({v})",
    ),
    "uuid": ("if type({v}) is not UUID:", "    raise expected('UUID', {v})", "{v} = str({v})"),
}
_INLINE_DECODE: Final[dict[str, tuple[str, ...]]] = {
    "str": ("if type({v}) is not str:", "    raise expected('a string', {v})"),
    "bool": ("if type({v}) is not bool:", "    raise expected('true or false', {v})"),
    "int": ("if type({v}) is not int:", "    {v} = {fn}({v})"),
    "float": ("if type({v}) is not float:", "    {v} = {fn}({v})"),
}
_INLINE_NAMES: Final[dict[str, Any]] = {
    "Invalid": Invalid,
    "expected": _expected,
    "INT_MIN": _INT_MIN,
    "UINT_MAX": _UINT_MAX,
    "isfinite": math.isfinite,
    "Decimal": Decimal,
    "UUID": UUID,
}


def _inline(checks: dict[str, tuple[str, ...]], shape: Shape) -> tuple[str, ...]:
    kind = (
        shape.kind
        if isinstance(shape, LeafShape)
        else "any"
        if isinstance(shape, AnyShape)
        else None
    )
    found = None if kind is None else checks.get(kind)
    return ("{v} = {fn}({v})",) if found is None else found


def _compile(lines: list[str], names: dict[str, Any], name: str) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    code = compile("\n".join(lines), f"<esframework {name}>", "exec")
    exec(code, names, namespace)  # noqa: S102 -- generated from field names, as attrs and cattrs do
    function: Callable[[Any], Any] = next(iter(namespace.values()))
    return function


def _expected_class(cls: type[Any]) -> Callable[[object], Invalid]:
    def expected_class(value: object) -> Invalid:
        return _expected(cls.__qualname__, value)

    return expected_class


def _recursion_guard(
    cache: dict[type[Any], Callable[[Any], Any]], cls: type[Any]
) -> Callable[[Any], Any]:
    # Stands in for a class's function while it is being compiled: only a class that contains
    # itself calls it, and the depth limit keeps a deep tree from overflowing Python's stack.
    local = threading.local()

    def recurse(value: Any) -> Any:
        depth = getattr(local, "depth", 0)
        if depth >= _MAX_RECURSION:
            msg = f"{cls.__qualname__} is nested in itself more than {_MAX_RECURSION} levels deep"
            raise Invalid(msg)
        local.depth = depth + 1
        try:
            return cache[cls](value)
        finally:
            local.depth = depth

    return recurse


def _python_type(shape: Shape) -> type[Any]:
    if isinstance(shape, LeafShape):
        return _LEAF_TYPES[shape.kind]
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


def _enum_encoder(shape: EnumShape) -> Encoder:
    cls, value_type = shape.cls, str if shape.values == "str" else int

    def encode(value: Any) -> Any:
        if type(value) is not cls:
            raise _expected(cls.__qualname__, value)
        raw: Any = value.value
        if type(raw) is not value_type:  # a Flag with no members yet, say
            raise _expected(f"a {cls.__qualname__} with a {value_type.__name__} value", value)
        return raw if value_type is str else _big(int(raw))

    return encode


def _enum_decoder(shape: EnumShape) -> Decoder:
    cls, value_type = shape.cls, str if shape.values == "str" else int

    def decode(value: Any) -> Any:
        if type(value) is value_type:
            try:
                return cls(value)
            except ValueError:
                pass
        elif type(value) is float and value_type is int:
            raise NeedsExactInts
        raise _expected(f"a value of {cls.__qualname__}", value)

    return decode


def _sequence_encoder(container: type[Any], item: Encoder) -> Encoder:
    name = container.__name__

    def encode(value: Any) -> list[Any]:
        if type(value) is not container:
            raise _expected(name, value)
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


def _sequence_decoder(container: type[Any], item: Decoder) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _expected("a JSON array", value)
        try:
            items = [item(x) for x in value]
        except Invalid as error:
            error.path.append(f"[{_failing_index(item, value)}]")
            raise
        return items if container is list else container(items)

    return decode


def _tuple_encoder(items: tuple[Encoder, ...]) -> Encoder:
    def encode(value: Any) -> list[Any]:
        if type(value) is not tuple or len(value) != len(items):
            raise _expected(f"a tuple of {len(items)}", value)
        out = []
        for i, (encode_item, x) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(encode_item(x))
            except Invalid as error:
                error.path.append(f"[{i}]")
                raise
        return out

    return encode


def _tuple_decoder(items: tuple[Decoder, ...]) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != len(items):
            raise _expected(f"a JSON array of {len(items)}", value)
        out = []
        for i, (decode_item, x) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(decode_item(x))
            except Invalid as error:
                error.path.append(f"[{i}]")
                raise
        return tuple(out)

    return decode


def _key_encoder(shape: Shape) -> Callable[[Any], str]:
    # JSON object keys are strings: each key type has one canonical text, so distinct keys
    # stay distinct.
    if isinstance(shape, EnumShape):
        encode_enum = _enum_encoder(shape)
        return lambda key: str(encode_enum(key))
    assert isinstance(shape, LeafShape)  # noqa: S101 -- _shapes allows only these keys
    encode = _LEAF_CODECS[shape.kind][0]
    if shape.kind == "int":
        return _enc_int_key
    return encode


def _enc_int_key(key: object) -> str:
    if type(key) is not int:
        raise _expected("int", key)
    return str(key)


def _key_decoder(shape: Shape) -> Callable[[str], Any]:
    if isinstance(shape, EnumShape):
        decode_enum = _enum_decoder(shape)
        if shape.values == "int":
            return lambda key: decode_enum(_dec_int(key))
        return decode_enum
    assert isinstance(shape, LeafShape)  # noqa: S101 -- _shapes allows only these keys
    if shape.kind == "int":
        return _dec_int
    return _LEAF_CODECS[shape.kind][1]


def _dict_encoder(key: Callable[[Any], str], value: Encoder) -> Encoder:
    def encode(mapping: Any) -> dict[str, Any]:
        if type(mapping) is not dict:
            raise _expected("dict", mapping)
        out = {}
        for k, v in mapping.items():
            try:
                out[key(k)] = value(v)
            except Invalid as error:
                error.path.append(f"[{k!r}]")
                raise
        return out

    return encode


def _dict_decoder(key: Callable[[str], Any], value: Decoder) -> Decoder:
    def decode(mapping: Any) -> dict[Any, Any]:
        if type(mapping) is not dict:
            raise _expected("a JSON object", mapping)
        out = {}
        for k, v in mapping.items():
            try:
                out[key(k)] = value(v)
            except Invalid as error:
                error.path.append(f"[{k!r}]")
                raise
        return out

    return decode


def _attrs_union_decoder(classes: list[tuple[list[str], Decoder]]) -> Decoder:
    # Every field is written, so a key only one member has tells which class it was; the one
    # member without such a key (there is at most one, see _shapes) is what remains.
    marked = [(frozenset(keys), decode) for keys, decode in classes if keys]
    fallback = next((decode for keys, decode in classes if not keys), None)

    def decode(value: dict[str, Any]) -> Any:
        for keys, decode_member in marked:
            if not keys.isdisjoint(value):
                return decode_member(value)
        if fallback is None:
            raise _expected("an object of one of the union's classes", value)
        return fallback(value)

    return decode
