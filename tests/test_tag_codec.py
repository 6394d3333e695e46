"""Tags round-trip through the serializer and the stores, or are refused before any write."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esframework import (
    InMemoryEventStore,
    Repository,
    SQLiteEventStore,
    aggregate,
    applies,
    emit,
    event,
    new,
    tag,
)
from esframework._serialization import DEFAULT_SERIALIZER
from esframework.errors import InvalidTagError


@event(name="TagCodecLabelled")
class Labelled:
    label: str = tag("label")
    number: int = tag("n")
    ident: uuid.UUID = tag("id")
    others: tuple[str, ...] = tag("other", default=())
    maybe: str | None = tag("maybe", default=None)


@aggregate(stream_type="TagCodecBox")
class Box:
    count: int = 0

    @applies(Labelled)
    def _labelled(self, _: Labelled) -> None:
        self.count += 1


# What a tag can hold once its name and colon are added: 1 to 255 characters, no NUL.
values = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=60)
extras = st.lists(
    st.text(
        st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
        min_size=1,
        max_size=255,
    ),
    max_size=4,
)


def expected(e: Labelled, extra: list[str]) -> tuple[str, ...]:
    tags = {f"label:{e.label}", f"n:{e.number}", f"id:{e.ident}", *extra}
    tags |= {f"other:{o}" for o in e.others}
    if e.maybe is not None:
        tags.add(f"maybe:{e.maybe}")
    return tuple(sorted(tags))


labelled = st.builds(
    Labelled,
    label=values,
    number=st.integers(-(2**63), 2**63 - 1),
    ident=st.uuids(),
    others=st.lists(values, max_size=3).map(tuple),
    maybe=st.none() | values,
)


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _store(kind: str, path: Path) -> InMemoryEventStore | SQLiteEventStore:
    return (
        InMemoryEventStore() if kind == "memory" else SQLiteEventStore(path / f"{uuid.uuid4()}.db")
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(e=labelled, extra=extras)
def test_tags_read_back_sorted_and_unique(
    e: Labelled, extra: list[str], store_kind: str, tmp_path: Path
) -> None:
    record = DEFAULT_SERIALIZER.encode(e, event_id=uuid.uuid4(), tags=[*extra, *extra])
    assert record.tags == expected(e, extra)
    store = _store(store_kind, tmp_path)
    try:
        box = new(Box, "box")
        emit(box, e, tags=extra)
        boxes = Repository(Box, store=store)
        boxes.save(box)
        [envelope] = list(boxes.history("box"))
        assert envelope.tags == expected(e, extra)
        assert envelope.event == e
    finally:
        store.close()


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ([""], "it is empty"),
        (["x" * 256], "more than 255"),
        (["a\x00b"], "NUL"),
    ],
)
def test_a_bad_extra_tag_is_refused_and_nothing_is_written(extra: list[str], reason: str) -> None:
    store = InMemoryEventStore()
    box = new(Box, "box")
    emit(box, Labelled(label="a", number=1, ident=uuid.UUID(int=1)), tags=extra)
    with pytest.raises(InvalidTagError, match=f"on stream 'box': .*{reason}"):
        Repository(Box, store=store).save(box)
    assert store.head() == 0


def test_a_field_value_too_long_for_a_tag_is_refused() -> None:
    e = Labelled(label="x" * 250, number=1, ident=uuid.UUID(int=1))
    with pytest.raises(InvalidTagError, match="label:x"):
        DEFAULT_SERIALIZER.encode(e, event_id=uuid.uuid4(), stream_id="s")
