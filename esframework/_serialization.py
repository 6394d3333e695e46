"""The codec: events and aggregate state to JSON bytes and back, with cattrs and orjson."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final
from uuid import UUID

import orjson

from esframework._codec import Codec
from esframework._envelope import NO_METADATA, Envelope, Metadata
from esframework._events import event_type_of, registry
from esframework._json import (
    Invalid,
    NeedsExactInts,
    dumps_json_value,
    loads,
    loads_exact,
    loads_json_value,
)
from esframework._records import EventPayload, NewEvent, StoredEvent
from esframework._shapes import AttrsShape, attrs_shape
from esframework._upcasting import Located, Upcasters, upcasters
from esframework.errors import CorruptEventError, EventEncodingError, UnsupportedFieldTypeError

__all__ = ["DEFAULT_SERIALIZER", "Serializer"]

_NUL: Final = "\\u0000"  # how orjson writes a NUL character inside a JSON string
_RESERVED_METADATA: Final = frozenset({"correlation_id", "causation_id"})

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class Serializer:
    """Encodes events to records and decodes records to typed envelopes.

    Encoding checks every value against its declared type, so whatever `encode` accepts
    decodes back equal, types included; a value that would not is refused with
    `EventEncodingError` before anything is written. The checking encoders and the decoders
    are compiled once per class and cached, so decoding costs one JSON parse and one
    generated function call per event.

    Args:
        upcasters: The upcaster chains to run on read; defaults to the ones registered with
            `esframework.upcaster`.
    """

    def __init__(self, *, upcasters: Upcasters = upcasters) -> None:
        self._upcasters = upcasters
        self._codec = Codec()
        self._encoders: dict[type[Any], Encoder] = {}
        self._decoders: dict[type[Any], Decoder] = {}
        self._current: dict[tuple[str, int], tuple[type[Any], Decoder]] = {}
        self._generation = registry.generation

    def encode(
        self, event: object, *, event_id: UUID, metadata: Metadata = NO_METADATA
    ) -> NewEvent:
        """Encode an event for appending.

        Raises:
            EventEncodingError: A value would not read back equal: a value of another type
                than its field's (an int in a str field, True in an int field), NaN or an
                infinity, or a time zone that cannot be stored. It names the field.
            UnsupportedFieldTypeError: The class has a field type that cannot be stored (it
                could not be checked when the class was defined: a forward reference).
        """
        kind = event_type_of(type(event))
        data = self._dumps(kind.name, type(event), event, "")
        try:
            encoded_metadata = self.encode_metadata(metadata)
        except Invalid as error:
            raise EventEncodingError(
                kind.name, f"its metadata: {error.reason}", field=_field("metadata.extra", error)
            ) from error
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
            try:
                return self._decode_payload(record, loads(record.data))
            except NeedsExactInts:  # an int beyond 64 bits, which orjson reads as a float
                return self._decode_payload(record, loads_exact(record.data))
        except Invalid as e:
            field = "" if e.where is None else f"field {e.where!r}: "
            raise _corrupt(record, f"the payload does not fit: {field}{e.reason}") from e
        except (ValueError, TypeError) as e:  # JSON errors are ValueErrors too
            raise _corrupt(record, f"the payload does not fit: {e}") from e

    def _decode_payload(self, record: StoredEvent | EventPayload, data: Any) -> Any:
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
                found = (cls, self._decoder(cls))
        return found[1](data)

    def _find_class(self, record: StoredEvent | EventPayload) -> tuple[type[Any], Decoder] | None:
        """Return the class and decoder of a current-version type, caching them; else None."""
        key = (record.event_type, record.schema_version)
        if registry.current_version(record.event_type) != record.schema_version:
            return None
        cls = registry.get(*key)
        assert cls is not None  # noqa: S101 -- the current version is registered
        found = self._current[key] = (cls, self._decoder(cls))
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
        """Encode metadata; `extra` holds JSON values only, with the rules of `Any` fields."""
        if metadata is NO_METADATA:
            return "{}"
        if reserved := _RESERVED_METADATA & metadata.extra.keys():
            msg = f"metadata.extra cannot hold {sorted(reserved)}: they are Metadata's own fields"
            raise Invalid(msg)
        fields: dict[str, Any] = dict(metadata.extra)
        if metadata.correlation_id is not None:
            fields["correlation_id"] = str(metadata.correlation_id)
        if metadata.causation_id is not None:
            fields["causation_id"] = str(metadata.causation_id)
        return dumps_json_value(fields)

    def decode_metadata(self, record: StoredEvent) -> Metadata:
        if record.metadata == "{}":
            return NO_METADATA
        try:
            fields = loads_json_value(record.metadata)
            correlation = fields.pop("correlation_id", None)
            causation = fields.pop("causation_id", None)
            return Metadata(
                correlation_id=None if correlation is None else UUID(correlation),
                causation_id=None if causation is None else UUID(causation),
                extra=fields,
            )
        except (AttributeError, ValueError, TypeError) as e:
            raise _corrupt(record, f"the metadata is not valid: {e}") from e

    def encode_state(self, state: object) -> str:
        """Encode an attrs instance (an aggregate's state) to JSON text.

        Raises:
            EventEncodingError: The state holds a value that would not read back equal.
        """
        return self._dumps(type(state).__qualname__, type(state), state, "its state: ")

    def decode_state(self, cls: type[Any], data: str) -> Any:
        """Decode JSON text made by `encode_state` into an instance of `cls`.

        Raises:
            ValueError: The text does not fit the class.
        """
        decode = self._decoder(cls)
        try:
            return decode(loads(data))
        except NeedsExactInts:
            return decode(loads_exact(data))

    def _dumps(self, name: str, cls: type[Any], value: object, prefix: str) -> str:
        encode = self._encoder(cls)
        try:
            return orjson.dumps(encode(value)).decode()
        except Invalid as error:
            raise EventEncodingError(name, prefix + error.reason, field=error.where) from error
        except orjson.JSONEncodeError as error:  # a surrogate, or nesting beyond 255 levels
            raise EventEncodingError(name, f"{prefix}{error}") from error
        except RecursionError as error:
            raise EventEncodingError(name, f"{prefix}the value is nested too deeply") from error

    def _encoder(self, cls: type[Any]) -> Encoder:
        encode = self._encoders.get(cls)
        if encode is None:
            encode = self._encoders[cls] = self._codec.encoder(_shape(cls))
        return encode

    def _decoder(self, cls: type[Any]) -> Decoder:
        decode = self._decoders.get(cls)
        if decode is None:
            decode = self._decoders[cls] = self._codec.decoder(_shape(cls))
        return decode


def _shape(cls: type[Any]) -> AttrsShape:
    try:
        return attrs_shape(cls)
    except NameError as error:  # a forward reference @event or @aggregate could not resolve
        raise UnsupportedFieldTypeError(
            cls.__qualname__, "(an annotation)", f"it names something undefined: {error}"
        ) from error


def _field(prefix: str, error: Invalid) -> str:
    return (
        prefix
        if error.where is None
        else f"{prefix}{'' if error.where.startswith('[') else '.'}{error.where}"
    )


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
