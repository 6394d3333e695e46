"""Generated event classes over the supported field types: saved, then loaded back equal, or
refused with EventEncodingError and nothing written, on every store."""

from __future__ import annotations

import enum
import itertools
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from esframework import Serializer, event
from esframework.errors import EventEncodingError
from tests.conftest import Backend


class Tone(enum.StrEnum):
    LOW = "low"
    HIGH = "high"


class Rank(enum.IntEnum):
    ONE = 1
    TWO = 2


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Label:
    text: str


texts = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
big_ints = st.integers(-(2**80), 2**80)
json_values = st.recursive(
    st.none() | st.booleans() | big_ints | texts | st.floats(-1e15, 1e15),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
# (annotation, values of it)
FIELD_TYPES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (str, texts),
    (int, big_ints),
    (bool, st.booleans()),
    (float, st.floats(allow_nan=False, allow_infinity=False)),
    (Decimal, st.decimals(allow_nan=False, allow_infinity=False)),
    (uuid.UUID, st.uuids()),
    (datetime, st.datetimes(timezones=st.none() | st.timezones())),
    (date, st.dates()),
    (Tone, st.sampled_from(Tone)),
    (Rank, st.sampled_from(Rank)),
    (int | None, st.none() | big_ints),
    (Point | Label, st.builds(Point, x=big_ints, y=big_ints) | st.builds(Label, text=texts)),
    (list[int], st.lists(big_ints, max_size=3)),
    (tuple[str, ...], st.lists(texts, max_size=3).map(tuple)),
    (frozenset[int], st.frozensets(big_ints, max_size=3)),
    (set[Tone], st.sets(st.sampled_from(Tone))),
    (dict[int, str], st.dictionaries(big_ints, texts, max_size=3)),
    (
        dict[uuid.UUID, Point],
        st.dictionaries(st.uuids(), st.builds(Point, x=big_ints, y=big_ints), max_size=2),
    ),
    (dict[str, Any], st.dictionaries(texts, json_values, max_size=3)),
    (Any, json_values),
]
_names = itertools.count()


@event(name="PropertyFloatHolder")
class FloatHolder:
    f0: float


@st.composite
def generated_event(draw: st.DrawFn) -> tuple[type[Any], dict[str, Any]]:
    """An event class with a few fields, and values: mostly of their type, sometimes not."""
    chosen = draw(st.lists(st.sampled_from(range(len(FIELD_TYPES))), min_size=1, max_size=4))
    annotations = {f"f{i}": FIELD_TYPES[k][0] for i, k in enumerate(chosen)}
    values = {}
    for i, k in enumerate(chosen):
        wrong = draw(st.integers(0, 9)) == 0
        source = draw(st.sampled_from(range(len(FIELD_TYPES)))) if wrong else k
        values[f"f{i}"] = draw(FIELD_TYPES[source][1])
    name = f"PropertyEvent{next(_names)}"
    cls = event(name=name)(type(name, (), {"__annotations__": annotations, "__module__": __name__}))
    return cls, values


def exactly_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        return all(
            exactly_equal(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a))
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exactly_equal(a[k], b[k]) for k in a)
    if isinstance(a, datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(generated=generated_event())
@example(generated=(FloatHolder, {"f0": 0}))  # an int in a float field, which is accepted
def test_generated_events_load_back_exactly_or_are_refused(
    backend: Backend, generated: Any
) -> None:
    """Whatever a save accepts loads back equal, types included; anything else writes nothing."""
    cls, values = generated
    instance = cls(**values)
    store = backend.store
    stream = f"prop-{uuid.uuid4()}"
    serializer = Serializer()
    try:
        record = serializer.encode(instance, event_id=uuid.uuid4())
    except EventEncodingError:
        assert list(store.read_stream(stream)) == []
        return
    store.append(stream, "PropertyHolder", [record], expected_version=0)
    [stored] = list(store.read_stream(stream))
    # The one allowance (PEP 484's): an int in a float field loads as the float it equals.
    expected = attrs.evolve(
        instance,
        **{
            f.name: float(values[f.name])
            for f in attrs.fields(cls)
            if f.type is float and type(values[f.name]) is int
        },
    )
    assert exactly_equal(serializer.decode_event(stored), expected)
