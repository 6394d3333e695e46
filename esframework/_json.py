"""JSON values as the codec writes and reads them, and the codec's internal error types.

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

`Any`-typed values (and metadata's `extra`) hold JSON values only, checked here on the way
in, so that they load back as they were.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, final

import orjson

__all__ = [
    "INT_MIN",
    "UINT_MAX",
    "Decoder",
    "Encoder",
    "Invalid",
    "NeedsExactInts",
    "big",
    "decode_any",
    "dumps_json_value",
    "encode_any",
    "expected",
    "holds_nul",
    "loads",
    "loads_compared",
    "loads_exact",
    "loads_json_value",
]

Encoder = Callable[[Any], Any]
Decoder = Callable[..., Any]  # cattrs calls structure hooks with the value and its type

INT_MIN: Final = -(2**63)
UINT_MAX: Final = 2**64 - 1
_MAX_ANY_DEPTH: Final = 100  # orjson refuses documents nested deeper than 255 levels
_FLOAT_AS_INT: Final = 1e16  # from here jsonb prints floats without a fraction
_NUL: Final = "\\u0000"  # how JSON writes a NUL character inside a string
# ... unless its backslash is itself escaped: a backslash then "u0000" is text, not a NUL.
_NUL_ESCAPE: Final = re.compile(r"(?:^|[^\\])(?:\\\\)*\\u0000")


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


def expected(what: str, value: object) -> Invalid:
    """Return the error for a value that is not `what`."""
    return Invalid(f"expected {what}, got {_got(value)}")


class NeedsExactInts(Exception):  # noqa: N818 -- a signal, not an error
    """The document holds an int beyond 64 bits, which orjson read as a float: parse again."""


def loads(text: str | bytes) -> Any:
    """Parse JSON quickly (orjson); integers beyond 64 bits come back as floats.

    A document orjson cannot read at all, one holding an integer past a double's range
    (10**400, which Python's ints and PostgreSQL's jsonb hold), is parsed exactly instead;
    text that is not JSON still raises `json.JSONDecodeError`.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return loads_exact(text)


def holds_nul(json_text: str) -> bool:
    """Whether JSON text holds a NUL character in a string (which PostgreSQL's jsonb refuses).

    Valid JSON text can only hold one escaped, as ``\\u0000``: the substring test is all most texts
    pay. A backslash before it may itself be escaped (``\\\\u0000`` is a backslash, then
    "u0000"): an escape starts after an even run of backslashes.
    """
    return _NUL in json_text and _NUL_ESCAPE.search(json_text) is not None


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON reading every integer exactly (the standard library's parser).

    As strict as orjson otherwise: NaN, infinities and floats past a double's range are not
    JSON numbers, and a string escaping half a surrogate pair is no text (orjson and
    PostgreSQL's jsonb refuse it); both raise `json.JSONDecodeError`, and so does a document
    nested deeper than Python's recursion limit lets the parser go (about 900 levels).
    """
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite_float)
    except RecursionError:  # nested deeper than Python's recursion limit lets it go
        raise json.JSONDecodeError("the document is nested too deep", str(text), 0) from None
    if _holds_lone_surrogate(value):
        raise json.JSONDecodeError("a string holds a lone surrogate", str(text), 0)
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if kind is list:
        return any(_holds_lone_surrogate(item) for item in value)
    if kind is dict:
        return any(_holds_lone_surrogate(k) or _holds_lone_surrogate(v) for k, v in value.items())
    return False


def _not_a_number(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise json.JSONDecodeError("number is infinity when parsed as double", text, 0)
    return value


@final
class _Number:
    """A JSON number as `loads_compared` reads it: its exact value, equal to no bool."""

    __slots__ = ("value",)

    def __init__(self, text: str) -> None:
        self.value = Decimal(text)

    def __eq__(self, other: object) -> bool:
        return type(other) is _Number and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def loads_compared(text: str | bytes) -> Any:
    """Parse JSON to compare it as a JSON value (is a retried event the stored one?).

    Numbers compare by their exact value, whatever their spelling: PostgreSQL's jsonb keeps
    1.2345678901234567e18 as 1234567890123456700 and 1e2 as 100, and those are the same
    numbers; ints past 64 bits stay exact (orjson reads them as doubles, 2**70 + 1 equal to
    2**70, and cannot read 10**400); and no number equals true or false.
    """
    return json.loads(text, parse_int=_Number, parse_float=_Number)


def loads_json_value(text: str | bytes) -> Any:
    """Parse a JSON value encoded by `dumps_json_value`, big ints included."""
    value = loads(text)
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


def decode_any(value: Any, _: object = None) -> Any:
    """Return a parsed `Any` value as it is, unless it lost a big int to orjson."""
    if _holds_lost_int(value):
        raise NeedsExactInts
    return value


def big(value: int) -> Any:
    """Return an int as orjson can write it: ints beyond 64 bits as raw JSON numbers.

    Raises:
        Invalid: The int has more digits than Python converts to text and back
            (`sys.get_int_max_str_digits`), so it could never be read.
    """
    if INT_MIN <= value <= UINT_MAX:
        return value
    try:
        return orjson.Fragment(str(value).encode())
    except ValueError:
        msg = f"the int has more than {sys.get_int_max_str_digits()} digits, which no load reads"
        raise Invalid(msg) from None


def encode_any(value: Any, depth: int = 0) -> Any:
    """Check a JSON value (None, bool, int, float, str, list, dict with str keys).

    Raises:
        Invalid: The value would not load back equal.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return big(value)
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
            out.append(encode_any(item, depth + 1))
        except Invalid as error:
            error.path.append(f"[{i}]")
            raise
    return out


def _enc_any_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            raise expected("str keys in an Any-typed dict", key)
        try:
            out[key] = encode_any(item, depth + 1)
        except Invalid as error:
            error.path.append(f"[{key!r}]")
            raise
    return out


def dumps_json_value(value: object) -> str:
    """Encode a plain JSON value (metadata's `extra`) with the rules of `Any`-typed fields.

    Raises:
        Invalid: The value would not load back equal.
    """
    return orjson.dumps(encode_any(value)).decode()
