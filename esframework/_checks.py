"""The checks every store backend shares, sync or async.

Backends only run statements; the decisions (is this stream id valid, does this version
conflict, is this append a retry of one already stored) live here, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from esframework._instrumentation import TRACEPARENT
from esframework._json import holds_nul, loads, loads_compared
from esframework._queries import MAX_POSITION, validate_event_tags
from esframework._records import AppendResult, ExpectedVersion, NewEvent, StoredEvent
from esframework._retention import check_tombstone_last
from esframework.errors import (
    ConcurrencyError,
    DuplicateEventIdError,
    EventEncodingError,
    IdempotencyConflictError,
    InvalidPositionError,
    InvalidStreamIdError,
    InvalidTimeError,
    InvalidTypeNameError,
    InvalidVersionError,
    StreamTypeMismatchError,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_STREAM_ID_LENGTH",
    "MAX_VERSION",
    "check_append",
    "check_expected_version",
    "check_read_range",
    "check_stream_type",
    "expected_as_int",
    "is_utf8",
    "match_retry",
    "stored_by_id",
    "utc_time",
    "validate_event_ids",
    "validate_payloads",
    "validate_stream_id",
    "validate_type_names",
]

MAX_STREAM_ID_LENGTH = 255
"""The PostgreSQL column's `VARCHAR(255)`; every backend enforces the same limit."""

DEFAULT_PAGE_SIZE = 1000

MAX_VERSION = 2**63 - 1
"""The highest stream version a store can hold (PostgreSQL's and SQLite's 64-bit integers)."""


def validate_stream_id(stream_id: str) -> None:
    """Raise `InvalidStreamIdError` unless every backend can store `stream_id` as it is."""
    if not isinstance(stream_id, str):  # typed str, but callers may pass anything
        raise InvalidStreamIdError(repr(stream_id), "it is not a string")
    if not stream_id:
        raise InvalidStreamIdError(stream_id, "it is empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidStreamIdError(
            stream_id, f"it has {len(stream_id)} characters, more than {MAX_STREAM_ID_LENGTH}"
        )
    if "\x00" in stream_id:
        raise InvalidStreamIdError(stream_id, "it contains a NUL character")
    if not is_utf8(stream_id):
        raise InvalidStreamIdError(
            stream_id, "it is not valid UTF-8 text (it holds a lone surrogate)"
        )


def is_utf8(text: str) -> bool:
    """Whether `text` encodes to UTF-8: a lone surrogate (from bytes decoded with
    `surrogateescape`, say) does not, and the database drivers fail on it."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def validate_type_names(stream_type: str, events: Sequence[NewEvent]) -> None:
    """Raise `InvalidTypeNameError` unless every backend can store these type names, and
    `ValueError` if there are no events."""
    if not events:
        msg = "append needs at least one event"
        raise ValueError(msg)
    for name in (stream_type, *(e.event_type for e in events)):
        if not isinstance(name, str):  # typed str, but callers may pass anything
            raise InvalidTypeNameError(repr(name), "it is not a string")
        if not name or len(name) > MAX_STREAM_ID_LENGTH:
            reason = f"type names need 1 to {MAX_STREAM_ID_LENGTH} characters"
            raise InvalidTypeNameError(repr(name[:80]), reason)
        if "\x00" in name:
            raise InvalidTypeNameError(repr(name[:80]), "it contains a NUL character")
        if not is_utf8(name):
            reason = "it is not valid UTF-8 text (it holds a lone surrogate)"
            raise InvalidTypeNameError(repr(name[:80]), reason)


def validate_event_ids(stream_id: str, events: Sequence[NewEvent]) -> None:
    """Raise `DuplicateEventIdError` if two of `events` share an event id.

    Checked before anything is read or written, so every store gives the same answer
    whatever it has stored: a batch that names one event twice is the caller's mistake, not a
    retry and not a conflict.
    """
    seen: set[UUID] = set()
    for e in events:
        if type(e.event_id) is not UUID:  # typed UUID, but callers may pass anything
            reason = (
                f"its event id {e.event_id!r} is not a UUID (appending to stream "
                f"{stream_id!r}); nothing was written"
            )
            raise EventEncodingError(str(e.event_type), reason)
        if e.event_id in seen:
            raise DuplicateEventIdError(str(e.event_id), stream_id)
        seen.add(e.event_id)


def check_append(
    stream_id: str,
    stream_type: str,
    events: Sequence[NewEvent],
    expected_version: int | ExpectedVersion,
) -> int | None:
    """Check an append's input as every store does, before it reads or writes anything,
    and return the version it expects (None for `ExpectedVersion.ANY`).

    Raises the framework's error for the first thing wrong: the stream id, a type name, an
    event id, a payload, a tag, a tombstone that is not last, the expected version.
    """
    validate_stream_id(stream_id)
    validate_type_names(stream_type, events)
    validate_event_ids(stream_id, events)
    validate_payloads(stream_id, events)
    validate_event_tags(stream_id, events)
    check_tombstone_last(events)
    return expected_as_int(stream_id, expected_version)


def validate_payloads(stream_id: str, events: Sequence[NewEvent]) -> None:
    """Raise `EventEncodingError` unless each event's data and metadata is a JSON object,
    as text, that every store keeps and reads back alike.

    Refused: text that is not JSON (NaN and infinities included), a JSON value other than an
    object (an array, a string), and a string holding a NUL character (``\\u0000``, which
    PostgreSQL's jsonb refuses). One parse per payload; metadata of ``"{}"`` (none) costs
    nothing. Checked before anything is read or written: an append-only store could never
    drop an event it cannot read back.
    """
    for e in events:
        _check_payload(stream_id, e, "data", e.data)
        if e.metadata != "{}":
            _check_payload(stream_id, e, "metadata", e.metadata)


def _check_payload(stream_id: str, event: NewEvent, name: str, text: object) -> None:
    if type(text) is not str:  # typed str, but callers may pass anything
        problem = f"is not a string but {type(text).__name__} {repr(text)[:60]}"
    else:
        try:
            value = loads(text)
        except ValueError as error:  # NaN too, and ints past the parser's digit limit
            problem = f"is not valid JSON ({error})"
        else:
            if type(value) is not dict:
                problem = f"is not a JSON object but a JSON {_json_kind(value)}"
            elif holds_nul(text):
                problem = "holds a NUL character (\\u0000), which PostgreSQL cannot store"
            elif (number := numeric_overflow(text)) is not None:
                problem = (
                    f"holds the number {number}, which PostgreSQL cannot store (its numeric "
                    f"keeps {NUMERIC_SCALE_MAX} digits after the point, and "
                    f"{NUMERIC_DIGITS_MAX} before)"
                )
            else:
                return
    reason = (
        f"its {name} {problem} (event id {event.event_id}, appending to stream "
        f"{stream_id!r}); nothing was written"
    )
    raise EventEncodingError(str(event.event_type), reason)


NUMERIC_SCALE_MAX: Final = 16383
"""The most digits after the point that PostgreSQL's numeric (jsonb's numbers) keeps: as
JSON, `1e-16384` and even `0e-16384` overflow it, though they parse as 0.0."""

NUMERIC_DIGITS_MAX: Final = 131072
"""The most digits before the point that PostgreSQL's numeric keeps."""

_NUMERIC_EXPONENT_MAX: Final = 2**30 - 1  # PostgreSQL refuses exponents past this, 0e… too

# A number has more than NUMERIC_SCALE_MAX digits after the point only with an exponent of
# -1000 or less, or else a fraction of more than LONG_FRACTION digits: payloads with neither
# (nearly all) pay two substring searches, and a length test.
_LONG_FRACTION: Final = NUMERIC_SCALE_MAX - 999
_NEGATIVE_EXPONENT: Final = re.compile(r"[eE]-[0-9]{4}")
_DIGIT_RUNS: Final = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))  # noqa: PLR2004
_LONG_RUN: Final = b"0" * (_LONG_FRACTION + 1)
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER: Final = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?)([0-9]+))?")


def numeric_overflow(json_text: str) -> str | None:
    """The first number of valid JSON text that PostgreSQL's numeric cannot hold, as it is
    written (shortened), or None.

    jsonb keeps numbers exactly, as numeric: at most `NUMERIC_SCALE_MAX` digits after the
    point (the digits of the fraction less the exponent) and `NUMERIC_DIGITS_MAX` before.
    Larger numbers than that are past a double's range, which the parsers refuse already;
    smaller ones (`1e-20000`) parse as 0.0, and PostgreSQL fails on them.
    """
    exponent_found = ("e-" in json_text or "E-" in json_text) and bool(
        _NEGATIVE_EXPONENT.search(json_text)
    )
    if not exponent_found and (
        len(json_text) <= _LONG_FRACTION
        or _LONG_RUN not in json_text.encode(errors="surrogatepass").translate(_DIGIT_RUNS)
    ):
        return None
    for match in _NUMBER.finditer(_STRING.sub('""', json_text)):
        whole, fraction, sign, digits = match.groups()
        fraction = fraction or ""
        exponent = 0
        if digits is not None:
            digits = digits.lstrip("0") or "0"
            exponent = int(digits) if len(digits) <= 10 else _NUMERIC_EXPONENT_MAX + 1  # noqa: PLR2004
            exponent = -exponent if sign == "-" else exponent
        significant = (whole + fraction).lstrip("0")
        # The digits before the point, once the exponent moved it, less the leading zeros.
        before = len(whole) + exponent - (len(whole) + len(fraction) - len(significant))
        if (
            abs(exponent) > _NUMERIC_EXPONENT_MAX
            or len(fraction) - exponent > NUMERIC_SCALE_MAX
            or (significant and before > NUMERIC_DIGITS_MAX)
        ):
            number = match[0]
            return number if len(number) <= 40 else f"{number[:20]}...{number[-17:]}"  # noqa: PLR2004
    return None


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return kinds.get(type(value), "null")


def check_read_range(method: str, after: object, limit: object, *, unlimited: bool) -> None:
    """Raise `InvalidPositionError` unless `after` is a position and `limit` a limit (None
    too, if `unlimited`): whole numbers from 0 to ``2**63 - 1``, bools and floats refused.

    Every store refuses the same reads alike, before reading: -1 read from the start on some
    and failed on others, and a number past 64 bits overflowed SQLite's integers.
    """
    if type(after) is not int or not 0 <= after <= MAX_POSITION:
        raise InvalidPositionError(f"{method} after", repr(after))
    if limit is None and unlimited:
        return
    if type(limit) is not int or not 0 <= limit <= MAX_POSITION:
        raise InvalidPositionError(f"{method} limit", repr(limit))


def check_stream_type(stream_id: str, stream_type: str, stored_type: str | None) -> None:
    """Raise `StreamTypeMismatchError` if the stream's events have another stream type.

    Args:
        stream_id: The stream appended to.
        stream_type: The stream type the append gives.
        stored_type: The stream type of the stream's stored events (None: a new stream).
    """
    if stored_type is not None and stored_type != stream_type:
        raise StreamTypeMismatchError(stream_id, stream_type, stored_type)


def expected_as_int(stream_id: str, expected: int | ExpectedVersion) -> int | None:
    """Return the version an append expects, or None for `ExpectedVersion.ANY`.

    Raises:
        InvalidVersionError: `expected` is no version a stream can have: below 0, past
            ``2**63 - 1``, or not an int (a str, a float; a bool too, though Python counts
            it an int).
    """
    if expected is ExpectedVersion.ANY:
        return None
    if expected is ExpectedVersion.NO_STREAM:
        return 0
    if type(expected) is not int or not 0 <= expected <= MAX_VERSION:
        raise InvalidVersionError(stream_id, expected, expected=True)
    return expected


def check_expected_version(stream_id: str, expected: int | None, actual: int) -> None:
    """Raise `ConcurrencyError` if the stream is not at the expected version."""
    if expected is not None and expected != actual:
        raise ConcurrencyError(stream_id, expected, actual)


def match_retry(
    stream_id: str,
    stream_type: str,
    events: Sequence[NewEvent],
    stored: Mapping[UUID, StoredEvent],
) -> AppendResult | None:
    """Decide whether an append repeats one already stored.

    Args:
        stream_id: The stream being appended to.
        stream_type: The stream type the append gives.
        events: The events being appended.
        stored: The stored events whose ids are among `events`' ids.

    Returns:
        None if no event id is stored (a fresh append), or the stored positions if every
        event is stored with the same content (a retry of a write that committed).

    Raises:
        IdempotencyConflictError: Some ids are stored and some not, or an id is stored with
            other content: this is not a retry, and must not be written.
    """
    if not stored:
        return None
    for new in events:
        old = stored.get(new.event_id)
        if old is None or not _same_content(stream_id, stream_type, new, old):
            culprit = new if old is not None else next(e for e in events if e.event_id in stored)
            raise IdempotencyConflictError(str(culprit.event_id), stream_id)
    found = [stored[e.event_id] for e in events]
    return AppendResult(
        stream_id=stream_id,
        version=max(e.version for e in found),
        positions=tuple(e.position for e in found),
    )


def _same_content(stream_id: str, stream_type: str, new: NewEvent, old: StoredEvent) -> bool:
    # Compare JSON values, numbers by their exact value: a database may store the text with
    # other spacing, key order or spelling of a number (jsonb writes 1e2 as 100).
    return (
        old.stream_id == stream_id
        and old.stream_type == stream_type
        and old.event_type == new.event_type
        and old.schema_version == new.schema_version
        and old.tags == tuple(sorted(set(new.tags)))
        and (old.data == new.data or _compared(old.data) == _compared(new.data))
        and _without_trace(old.metadata) == _without_trace(new.metadata)
    )


def _compared(text: str) -> object:
    try:
        return loads_compared(text)
    except RecursionError:  # nested deeper than the exact parser goes (orjson reads 1024)
        return loads(text)


def _without_trace(metadata: str) -> object:
    # The trace context tells which attempt wrote the events, not what they are: a retry
    # from another trace (a client that resent its request) is still the same write.
    fields = _compared(metadata)
    if isinstance(fields, dict):
        fields.pop(TRACEPARENT, None)
    return fields


def utc_time(as_of: datetime) -> datetime:
    """Return `as_of` in UTC, the zone every store records times in.

    Raises:
        InvalidTimeError: `as_of` is naive: which instant it means is unknown.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise InvalidTimeError(as_of)
    return as_of.astimezone(UTC)


def stored_by_id(events: Iterable[StoredEvent]) -> dict[UUID, StoredEvent]:
    """Index stored events by their event id (for `match_retry`)."""
    return {e.event_id: e for e in events}
