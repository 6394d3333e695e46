"""The codec: events and aggregate state to JSON bytes and back, with cattrs and orjson."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from esframework._envelope import NO_METADATA, Envelope, Metadata
from esframework._events import event_type_of, registry
from esframework._records import EventPayload, NewEvent, StoredEvent
from esframework._upcasting import Located, Upcasters, upcasters
from esframework.errors import CorruptEventError, EventEncodingError

__all__ = ["DEFAULT_SERIALIZER", "Serializer", "make_event_converter"]

_INT64_MIN: Final = -(2**63)
_NUL: Final = "\\u0000"  # how orjson writes a NUL character inside a JSON string
_RESERVED_METADATA: Final = frozenset({"correlation_id", "causation_id"})
_UINT64_MAX: Final = 2**64 - 1


def _unstructure_int(value: int) -> int | str:
    # orjson refuses integers outside 64 bits; store those as decimal strings. Decoding goes by
    # the declared field type, and int() reads both forms.
    return value if _INT64_MIN <= value <= _UINT64_MAX else str(value)


def _unstructure_float(value: float) -> float:
    # orjson would silently write NaN and infinities as null: refuse them before writing.
    if not math.isfinite(value):
        msg = f"{value} is not a finite number, and JSON cannot store it"
        raise ValueError(msg)
    return value


def _structure_decimal(value: object, _: type[Decimal]) -> Decimal:
    if isinstance(value, float):  # a float would carry binary rounding into the Decimal
        msg = f"expected a decimal string, got the float {value!r}"
        raise TypeError(msg)
    return Decimal(str(value))


def _structure_str(value: object, _: type[str]) -> str:
    if type(value) is not str:
        msg = f"expected a string, got {value!r}"
        raise TypeError(msg)
    return value


def _structure_int(value: object, _: type[int]) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value.lstrip("-").isdigit():  # beyond 64 bits, see above
        return int(value)
    msg = f"expected an integer, got {value!r}"
    raise TypeError(msg)


def _structure_float(value: object, _: type[float]) -> float:
    if type(value) not in (float, int):
        msg = f"expected a number, got {value!r}"
        raise TypeError(msg)
    return float(value)  # type: ignore[arg-type]


def _structure_bool(value: object, _: type[bool]) -> bool:
    if type(value) is not bool:
        msg = f"expected true or false, got {value!r}"
        raise TypeError(msg)
    return value


def make_event_converter() -> cattrs.Converter:
    """Return the cattrs converter esframework encodes events and snapshots with.

    Based on cattrs' orjson preset, with strict primitive types, plus exact `Decimal` (orjson
    has no decimal type, so decimals are stored as strings: no precision is lost), integers
    beyond 64 bits, finite floats only, and `UUID`.
    """
    converter = make_converter()
    # Strict primitives: a stored value of the wrong type is corruption, not something to coerce.
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_unstructure_hook(int, _unstructure_int)
    converter.register_unstructure_hook(float, _unstructure_float)
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_unstructure_hook(UUID, str)
    converter.register_structure_hook(UUID, lambda v, _: UUID(v))
    return converter


Unstructure = Callable[[Any], Any]
Structure = Callable[[Any, Any], Any]


class Serializer:
    """Encodes events to records and decodes records to typed envelopes.

    Hooks are compiled once per event class and cached, so decoding costs one orjson parse
    and one generated cattrs function call per event.

    Args:
        upcasters: The upcaster chains to run on read; defaults to the ones registered with
            `esframework.upcaster`.
    """

    def __init__(self, *, upcasters: Upcasters = upcasters) -> None:
        self._upcasters = upcasters
        self._converter = make_event_converter()
        self._unstructure: dict[type[Any], Unstructure] = {}
        self._structure: dict[type[Any], Structure] = {}
        self._current: dict[tuple[str, int], tuple[type[Any], Structure]] = {}
        self._generation = registry.generation

    def encode(
        self, event: object, *, event_id: UUID, metadata: Metadata = NO_METADATA
    ) -> NewEvent:
        """Encode an event for appending.

        Raises:
            EventEncodingError: A value cannot be stored faithfully (NaN, an unsupported type).
        """
        kind = event_type_of(type(event))
        try:
            data = orjson.dumps(self._unstructure_hook(type(event))(event)).decode()
            encoded_metadata = self.encode_metadata(metadata)
        except (ValueError, TypeError, orjson.JSONEncodeError) as error:
            raise EventEncodingError(kind.name, str(error)) from error
        if _NUL in data or _NUL in encoded_metadata:
            raise EventEncodingError(
                kind.name, "a string holds a NUL character, which PostgreSQL cannot store"
            )
        return NewEvent(
            event_id=event_id,
            event_type=kind.name,
            schema_version=kind.version,
            data=data,
            metadata=encoded_metadata,
        )

    def decode(self, record: StoredEvent) -> Envelope[Any]:
        """Decode a stored event into its current event class, upcasting it if needed.

        Raises:
            UnknownEventTypeError: The event type is not registered.
            MissingUpcasterError: The event is at an old version with no way up.
            CorruptEventError: The payload is not valid JSON or does not fit the class.
        """
        return Envelope(
            self.decode_event(record),
            record.event_id,
            record.stream_id,
            record.stream_type,
            record.version,
            record.position,
            record.recorded_at,
            self.decode_metadata(record),
        )

    def decode_event(self, record: StoredEvent | EventPayload) -> Any:
        """Decode just the event of a stored record (see `decode`)."""
        if self._generation != registry.generation:
            self._current.clear()
            self._generation = registry.generation
        try:
            data = orjson.loads(record.data)
            found = self._current.get((record.event_type, record.schema_version))
            if found is None:
                found = self._find_class(record)
                if found is None:  # an old version: upcast this one
                    where = Located(record.stream_id, record.version, record.position)
                    name, version, data = self._upcasters.upcast(
                        record.event_type, record.schema_version, data, where
                    )
                    cls = registry.get(name, version)
                    assert cls is not None  # noqa: S101 -- upcast() ends at a registered version
                    found = (cls, self._structure_hook(cls))
            cls, structure = found
            return structure(data, cls)
        except cattrs.BaseValidationError as e:
            details = "; ".join(cattrs.transform_error(e, path="data"))
            raise _corrupt(record, f"the payload does not fit: {details}") from e
        except (orjson.JSONDecodeError, ValueError, TypeError) as e:
            raise _corrupt(record, f"the payload does not fit: {e}") from e

    def _find_class(self, record: StoredEvent | EventPayload) -> tuple[type[Any], Structure] | None:
        """Return the class and hook of a current-version type, caching them; else None."""
        key = (record.event_type, record.schema_version)
        if registry.current_version(record.event_type) != record.schema_version:
            return None
        cls = registry.get(*key)
        assert cls is not None  # noqa: S101 -- the current version is registered
        found = self._current[key] = (cls, self._structure_hook(cls))
        return found

    def stored_type_names(self, event_classes: Iterable[type[Any]]) -> frozenset[str]:
        """Return the type names events of these classes may be stored under, old names too."""
        names: set[str] = set()
        for cls in event_classes:
            names |= self._upcasters.names_leading_to(event_type_of(cls).name)
        return frozenset(names)

    def maps_type_name(self, name: str) -> bool:
        """Return whether events stored under type `name` have a class or upcaster to read them."""
        return self._upcasters.maps(name)

    def encode_metadata(self, metadata: Metadata) -> str:
        if metadata is NO_METADATA:
            return "{}"
        if reserved := _RESERVED_METADATA & metadata.extra.keys():
            msg = f"metadata.extra cannot hold {sorted(reserved)}: they are Metadata's own fields"
            raise ValueError(msg)
        fields: dict[str, Any] = dict(metadata.extra)
        if metadata.correlation_id is not None:
            fields["correlation_id"] = str(metadata.correlation_id)
        if metadata.causation_id is not None:
            fields["causation_id"] = str(metadata.causation_id)
        return orjson.dumps(fields).decode()

    def decode_metadata(self, record: StoredEvent) -> Metadata:
        if record.metadata == "{}":
            return NO_METADATA
        try:
            fields = orjson.loads(record.metadata)
            correlation = fields.pop("correlation_id", None)
            causation = fields.pop("causation_id", None)
            return Metadata(
                correlation_id=None if correlation is None else UUID(correlation),
                causation_id=None if causation is None else UUID(causation),
                extra=fields,
            )
        except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError) as e:
            raise _corrupt(record, f"the metadata is not valid: {e}") from e

    def encode_state(self, state: object) -> str:
        """Encode an attrs instance (an aggregate's state) to JSON text.

        Raises:
            EventEncodingError: The state holds a value that cannot be stored.
        """
        try:
            return orjson.dumps(self._unstructure_hook(type(state))(state)).decode()
        except (ValueError, TypeError, orjson.JSONEncodeError) as error:
            raise EventEncodingError(type(state).__qualname__, f"its state: {error}") from error

    def decode_state(self, cls: type[Any], data: str) -> Any:
        """Decode JSON text made by `encode_state` into an instance of `cls`."""
        return self._structure_hook(cls)(orjson.loads(data), cls)

    def _unstructure_hook(self, cls: type[Any]) -> Unstructure:
        hook = self._unstructure.get(cls)
        if hook is None:
            hook = self._unstructure[cls] = self._converter.get_unstructure_hook(cls)
        return hook

    def _structure_hook(self, cls: type[Any]) -> Structure:
        hook = self._structure.get(cls)
        if hook is None:
            hook = self._structure[cls] = self._converter.get_structure_hook(cls)
        return hook


def _corrupt(record: StoredEvent | EventPayload, reason: str) -> CorruptEventError:
    return CorruptEventError(
        reason,
        event_type=record.event_type,
        stream_id=record.stream_id,
        version=record.version,
        position=record.position,
    )


DEFAULT_SERIALIZER = Serializer()
"""The serializer repositories and subscriptions use unless given another."""
