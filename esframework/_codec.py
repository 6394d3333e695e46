"""Checking encoders and decoders for event and state classes, on a private cattrs converter.

cattrs is the engine: a `Converter` of the codec's own (never cattrs' global one) generates one
unstructure and one structure function per attrs class (`cattrs.gen.make_dict_unstructure_fn`
and `make_dict_structure_fn`, from hook factories registered for attrs classes), caches them,
and dispatches nested classes through itself. What cattrs does by default is not enough for
storage, though: its unstructure hooks pass values through unchecked (an int in a `str` field
was written, and every later load failed), and its structure hooks coerce (`"1"` into an int,
`True` into an `IntEnum`). So every field gets a strict hook as a cattrs override, built from
the field's resolved shape (`_shapes.py`, the one definition of what is storable, which also
rejects unsupported annotations when `@event` or `@aggregate` defines the class): whatever the
encoder accepts, the decoder reads back equal, types included; anything else raises `Invalid`
before anything is written, and the serializer names the event type and the field.

The field hooks are `_leaves.py` (plain values, enums, dict keys) and `_hooks.py` (containers,
unions, and the wrapper of each generated class function: its exact type check, the field
path of an error, `init=False` fields on frozen classes); JSON itself is `_json.py`.

Why not more of cattrs:

- The field hooks are overrides rather than hooks registered per type, because cattrs
  dispatches `str`, `int` and `float` by `singledispatch`, which also catches their
  subclasses: a `StrEnum` or `IntEnum` field would get the `str` or `int` hook and load as a
  plain value. A shape knows which it is.
- Union strategies: `configure_tagged_union` would add a tag to the stored JSON (a format
  change), `configure_union_passthrough` checks nothing on the way in, and cattrs' default
  disambiguation of attrs classes looks only at fields without defaults, while this codec
  always writes every field, so any field name of a class's own tells it apart (which
  `_shapes.py` checks when the class is defined).
- Detailed validation (`ClassValidationError`) is off: the wrapper finds the failing field
  only once something failed, so the hot path pays nothing for the error paths.

Cost, against the hand-generated codec this replaced (which inlined the checks of plain
fields): `Serializer.encode` of a typical event takes 1.0-1.1 times as long, the encoding
step alone about 1.3 times (one hook call per field, some 0.15 µs for four fields), and
decoding is on par (0.9-1.0 times).
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from esframework._hooks import (
    ClassDecoderParts,
    attrs_union_decoder,
    class_decoder,
    class_encoder,
    dict_decoder,
    dict_encoder,
    recursion_guard,
    sequence_decoder,
    sequence_encoder,
    tuple_decoder,
    tuple_encoder,
    union_decoder,
    union_encoder,
)
from esframework._json import Decoder, Encoder, decode_any, encode_any
from esframework._leaves import LEAF_CODECS, enum_decoder, enum_encoder, key_decoder, key_encoder
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
    attrs_shape,
    unique_fields,
)

__all__ = ["Codec"]


class Codec:
    """A private cattrs converter with strict hooks; one encoder and decoder per attrs class."""

    def __init__(self) -> None:
        self._converter = cattrs.Converter(detailed_validation=False)
        self._converter.register_unstructure_hook_factory(attrs.has, self._make_encoder)
        self._converter.register_structure_hook_factory(attrs.has, self._make_decoder)
        # Hooks are built on first use, from any thread: one build at a time, so a class that
        # contains itself finds its own hook under construction (see recursion_guard).
        self._lock = threading.RLock()
        self._encoders: dict[type[Any], Encoder] = {}
        self._decoders: dict[type[Any], Decoder] = {}
        self._building: set[tuple[str, type[Any]]] = set()

    def encoder(self, shape: AttrsShape) -> Encoder:
        """Return the function turning an instance into JSON-ready values (raises Invalid)."""
        found = self._encoders.get(shape.cls)
        if found is None:
            with self._lock:
                found = self._class_encoder(shape.cls)
        return found

    def decoder(self, shape: AttrsShape) -> Decoder:
        """Return the function turning parsed JSON into an instance (raises Invalid)."""
        found = self._decoders.get(shape.cls)
        if found is None:
            with self._lock:
                found = self._class_decoder(shape.cls)
        return found

    def _class_encoder(self, cls: type[Any]) -> Encoder:
        if ("encode", cls) in self._building:
            return recursion_guard(self._encoders, cls)
        hook: Encoder = self._converter.get_unstructure_hook(cls)
        return hook

    def _class_decoder(self, cls: type[Any]) -> Decoder:
        if ("decode", cls) in self._building:
            return recursion_guard(self._decoders, cls)
        hook: Decoder = self._converter.get_structure_hook(cls)
        return hook

    def _make_encoder(self, cls: type[Any]) -> Encoder:
        """The converter's unstructure hook factory for attrs classes."""
        shape = attrs_shape(cls)
        self._building.add(("encode", cls))
        try:
            fields = tuple((field.name, self._encoder(field.shape)) for field in shape.fields)
            # Any: cattrs types the overrides' **kwargs like its own keyword flags.
            overrides: dict[str, Any] = {n: override(unstruct_hook=hook) for n, hook in fields}
            generated = make_dict_unstructure_fn(
                cls,
                self._converter,
                _cattrs_include_init_false=True,  # every field is written
                **overrides,
            )
        finally:
            self._building.discard(("encode", cls))
        encode = self._encoders[cls] = class_encoder(cls, generated, fields)
        return encode

    def _make_decoder(self, cls: type[Any]) -> Decoder:
        """The converter's structure hook factory for attrs classes."""
        shape = attrs_shape(cls)
        self._building.add(("decode", cls))
        try:
            fields: ClassDecoderParts = tuple(
                (field.name, self._decoder(field.shape), not field.has_default)
                for field in shape.fields
            )
            overrides: dict[str, Any] = {n: override(struct_hook=hook) for n, hook, _ in fields}
            generated = make_dict_structure_fn(
                cls,
                self._converter,
                _cattrs_forbid_extra_keys=False,  # a field removed since, say
                _cattrs_detailed_validation=False,
                **overrides,
            )
        finally:
            self._building.discard(("decode", cls))
        # cattrs sets init=False fields with a plain assignment, which frozen classes refuse.
        late = tuple(
            part
            for part, field in zip(fields, shape.fields, strict=True)
            if field.init_name is None
        )
        decode = self._decoders[cls] = class_decoder(cls, generated, fields, late)
        return decode

    def _encoder(self, shape: Shape) -> Encoder:  # noqa: PLR0911
        if isinstance(shape, LeafShape):
            return LEAF_CODECS[shape.kind][0]
        if isinstance(shape, AnyShape):
            return encode_any
        if isinstance(shape, EnumShape):
            return enum_encoder(shape)
        if isinstance(shape, SequenceShape):
            return sequence_encoder(shape.container, self._encoder(shape.item))
        if isinstance(shape, TupleShape):
            return tuple_encoder(tuple(self._encoder(item) for item in shape.items))
        if isinstance(shape, DictShape):
            return dict_encoder(key_encoder(shape.key), self._encoder(shape.value))
        if isinstance(shape, UnionShape):
            return union_encoder([(member, self._encoder(member)) for member in shape.members])
        return self._class_encoder(shape.cls)

    def _decoder(self, shape: Shape) -> Decoder:  # noqa: PLR0911
        if isinstance(shape, LeafShape):
            return LEAF_CODECS[shape.kind][1]
        if isinstance(shape, AnyShape):
            return decode_any
        if isinstance(shape, EnumShape):
            return enum_decoder(shape)
        if isinstance(shape, SequenceShape):
            return sequence_decoder(shape.container, self._decoder(shape.item))
        if isinstance(shape, TupleShape):
            return tuple_decoder(tuple(self._decoder(item) for item in shape.items))
        if isinstance(shape, DictShape):
            return dict_decoder(key_decoder(shape.key), self._decoder(shape.value))
        if isinstance(shape, UnionShape):
            return self._union_decoder(shape)
        return self._class_decoder(shape.cls)

    def _union_decoder(self, shape: UnionShape) -> Decoder:
        plain = [(m, self._decoder(m)) for m in shape.members if not isinstance(m, AttrsShape)]
        classes = [m for m in shape.members if isinstance(m, AttrsShape)]
        objects = (
            attrs_union_decoder(
                [
                    (unique_fields(c, [o for o in classes if o is not c]), self._decoder(c))
                    for c in classes
                ]
            )
            if classes
            else None
        )
        return union_decoder(plain, objects)
