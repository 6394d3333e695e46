"""The leaves of the codec: strict encoders and decoders of plain values, enums and keys.

Each encoder checks the exact type: a subclass (bool for int, a StrEnum for str) would load
back as the base type. Each decoder accepts only the JSON type its encoder writes (bool is
not an int, a string is not a number), plus what earlier versions wrote. Decoders take the
declared type as an optional second argument, as cattrs calls structure hooks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from esframework._json import Decoder, Encoder, Invalid, NeedsExactInts, big, expected
from esframework._shapes import EnumShape, LeafShape, Shape

__all__ = [
    "LEAF_CODECS",
    "LEAF_TYPES",
    "enum_decoder",
    "enum_encoder",
    "key_decoder",
    "key_encoder",
]

_INT_TEXT: Final = re.compile(r"-?[0-9]+")


def _enc_none(value: object) -> None:
    if value is not None:
        raise expected("None", value)


def _enc_str(value: object) -> str:
    if type(value) is not str:
        raise expected("str", value)
    return value


def _enc_bool(value: object) -> bool:
    if type(value) is not bool:
        raise expected("bool", value)
    return value


def _enc_int(value: object) -> Any:
    if type(value) is not int:
        raise expected("int", value)
    return big(value)


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
    raise expected("float", value)


def _enc_decimal(value: object) -> str:
    if type(value) is not Decimal:
        raise expected("Decimal", value)
    if not value.is_finite():
        msg = f"Decimal({str(value)!r}) is not a finite number, and cannot be stored"
        raise Invalid(msg)
    return str(value)


def _enc_uuid(value: object) -> str:
    if type(value) is not UUID:
        raise expected("UUID", value)
    return str(value)


def _enc_date(value: object) -> str:
    if type(value) is not date:
        raise expected("date", value)
    return value.isoformat()


def _enc_datetime(value: object) -> str:
    if type(value) is not datetime:
        raise expected("datetime", value)
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


def _dec_none(value: object, _: object = None) -> None:
    if value is not None:
        raise expected("null", value)


def _dec_str(value: object, _: object = None) -> str:
    if type(value) is not str:
        raise expected("a string", value)
    return value


def _dec_bool(value: object, _: object = None) -> bool:
    if type(value) is not bool:
        raise expected("true or false", value)
    return value


def _dec_int(value: object, _: object = None) -> int:
    if type(value) is int:
        return value
    if type(value) is float:
        raise NeedsExactInts
    # Earlier versions stored ints beyond 64 bits as decimal strings.
    if type(value) is str and _INT_TEXT.fullmatch(value):
        return int(value)
    raise expected("an integer", value)


def _dec_float(value: object, _: object = None) -> float:
    if type(value) is float:
        return value
    if type(value) is int:  # jsonb prints 1e16 as 10000000000000000
        return float(value)
    raise expected("a number", value)


def _dec_decimal(value: object, _: object = None) -> Decimal:
    if type(value) is str or type(value) is int:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise expected("a decimal string", value)


def _dec_uuid(value: object, _: object = None) -> UUID:
    if type(value) is str:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise expected("a UUID string", value)


def _dec_date(value: object, _: object = None) -> date:
    if type(value) is str:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise expected("an ISO 8601 date", value)


def _dec_datetime(value: object, _: object = None) -> datetime:
    if type(value) is not str:
        raise expected("an ISO 8601 date and time", value)
    text, key = value, None
    if value.endswith("]") and "[" in value:
        text, _, key = value[:-1].partition("[")
    try:
        parsed = datetime.fromisoformat(text)
        zone = None if key is None else ZoneInfo(key)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise expected("an ISO 8601 date and time", value) from error
    if zone is None:
        return parsed
    wall = parsed.replace(tzinfo=None)
    for fold in (0, 1):  # the stored offset tells which of a repeated hour it was
        candidate = wall.replace(tzinfo=zone, fold=fold)
        if candidate.utcoffset() == parsed.utcoffset():
            return candidate
    return parsed.astimezone(zone)  # the zone's rules changed since: keep the instant


LEAF_CODECS: Final[dict[str, tuple[Encoder, Decoder]]] = {
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
LEAF_TYPES: Final[dict[str, type[Any]]] = {
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


def enum_encoder(shape: EnumShape) -> Encoder:
    cls, value_type = shape.cls, str if shape.values == "str" else int

    def encode(value: Any) -> Any:
        if type(value) is not cls:
            raise expected(cls.__qualname__, value)
        raw: Any = value.value
        if type(raw) is not value_type:  # a Flag with no members yet, say
            raise expected(f"a {cls.__qualname__} with a {value_type.__name__} value", value)
        return raw if value_type is str else big(int(raw))

    return encode


def enum_decoder(shape: EnumShape) -> Decoder:
    cls, value_type = shape.cls, str if shape.values == "str" else int

    def decode(value: Any, _: object = None) -> Any:
        if type(value) is value_type:
            try:
                return cls(value)
            except ValueError:
                pass
        elif type(value) is float and value_type is int:
            raise NeedsExactInts
        raise expected(f"a value of {cls.__qualname__}", value)

    return decode


def key_encoder(shape: Shape) -> Callable[[Any], str]:
    # JSON object keys are strings: each key type has one canonical text, so distinct keys
    # stay distinct.
    if isinstance(shape, EnumShape):
        encode_enum = enum_encoder(shape)
        return lambda key: str(encode_enum(key))
    assert isinstance(shape, LeafShape)  # noqa: S101 -- _shapes allows only these keys
    encode = LEAF_CODECS[shape.kind][0]
    if shape.kind == "int":
        return _enc_int_key
    return encode


def _enc_int_key(key: object) -> str:
    if type(key) is not int:
        raise expected("int", key)
    return str(key)


def key_decoder(shape: Shape) -> Callable[[str], Any]:
    if isinstance(shape, EnumShape):
        decode_enum = enum_decoder(shape)
        if shape.values == "int":
            return lambda key: decode_enum(_dec_int(key))
        return decode_enum
    assert isinstance(shape, LeafShape)  # noqa: S101 -- _shapes allows only these keys
    if shape.kind == "int":
        return _dec_int
    return LEAF_CODECS[shape.kind][1]
