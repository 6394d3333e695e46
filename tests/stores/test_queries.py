"""Tagged events, reads by query and conditional appends: the store contract, every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esframework import (
    AppendCondition,
    ConcurrencyError,
    ConditionFailedError,
    EventStore,
    ExpectedVersion,
    NewEvent,
    Query,
    QueryItem,
)
from esframework.errors import IdempotencyConflictError, InvalidTagError
from tests.conftest import Backend
from tests.stores.test_unit_of_work import run


def tagged(kind: str = "Happened", *tags: str, n: int = 0) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        event_type=kind,
        schema_version=1,
        data=orjson.dumps({"n": n}).decode(),
        tags=tuple(tags),
    )


def new_stream() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def put(store: EventStore, *events: NewEvent, condition: AppendCondition | None = None) -> None:
    store.append(
        new_stream(),
        "S",
        list(events),
        expected_version=ExpectedVersion.NO_STREAM,
        condition=condition,
    )


def course(c: str) -> Query:
    return Query.of(QueryItem(types=["Subscribed", "CourseDefined"], tags=[f"course:{c}"]))


def test_tags_are_stored_sorted_and_unique(store: EventStore) -> None:
    """An event's tags read back sorted, each once, from stream, global and query reads."""
    stream = new_stream()
    event = tagged("Happened", "b", "a", "b")
    store.append(stream, "S", [event], expected_version=0)
    (from_all,) = [e for e in store.read_all() if e.stream_id == stream]  # positioned now
    (from_stream,) = store.read_stream(stream)
    (from_query,) = store.read_query(Query.of(QueryItem(tags=["a"]))).events
    assert from_stream.tags == from_all.tags == from_query.tags == ("a", "b")
    assert from_stream == from_all == from_query


def test_untagged_events_read_with_no_tags(store: EventStore) -> None:
    """Events appended without tags read back with none, and match only tagless items."""
    put(store, tagged("Plain"))
    (event,) = store.read_query(Query.of(QueryItem(types=["Plain"]))).events
    assert event.tags == ()
    assert store.read_query(Query.of(QueryItem(types=["Plain"], tags=["x"]))).events == []


@pytest.mark.parametrize("bad", ["", "x" * 256, "a\x00b"])
def test_invalid_tags_are_refused_and_nothing_is_written(store: EventStore, bad: str) -> None:
    """An event with an empty, too long or NUL-bearing tag is refused, naming the tag."""
    stream = new_stream()
    with pytest.raises(InvalidTagError) as caught:
        store.append(stream, "S", [tagged("A", "ok"), tagged("B", bad)], expected_version=0)
    assert caught.value.tag == bad[:80] or caught.value.tag == bad
    assert caught.value.stream_id == stream
    assert store.stream_version(stream) == 0
    assert store.head() == 0


def test_a_tag_of_255_characters_is_kept(store: EventStore) -> None:
    tag = "t" * 255
    put(store, tagged("A", tag))
    assert store.read_query(Query.of(QueryItem(tags=[tag]))).events[0].tags == (tag,)


def test_query_items_are_or_and_their_tags_are_and(store: EventStore) -> None:
    """An item needs all its tags and one of its types; a query needs any of its items."""
    put(store, tagged("Subscribed", "course:c1", "student:s1"))  # 1
    put(store, tagged("Subscribed", "course:c2", "student:s1"))  # 2
    put(store, tagged("Renamed", "course:c1"))  # 3
    put(store, tagged("Other"))  # 4

    def types(query: Query) -> list[tuple[str, tuple[str, ...]]]:
        return [(e.event_type, e.tags) for e in store.read_query(query).events]

    both = QueryItem(tags=["course:c1", "student:s1"])
    assert types(Query.of(both)) == [("Subscribed", ("course:c1", "student:s1"))]
    assert len(types(Query.of(QueryItem(tags=["course:c1"])))) == 2
    assert len(types(Query.of(QueryItem(types=["Subscribed"])))) == 2
    either = Query.of(QueryItem(tags=["course:c2"])) | Query.of(QueryItem(types=["Renamed"]))
    assert [t for t, _ in types(either)] == ["Subscribed", "Renamed"]
    assert len(types(Query.all())) == 4
    assert len(types(Query.of(QueryItem()))) == 4


def test_read_query_after_and_limit_and_head(store: EventStore) -> None:
    """`after` skips seen positions; `limit` cuts the read and its head to the last event."""
    for i in range(5):
        put(store, tagged("A", "x", n=i))
    put(store, tagged("B"))
    query = Query.of(QueryItem(tags=["x"]))
    everything = store.read_query(query)
    positions = [e.position for e in everything.events]
    assert len(positions) == 5
    assert everything.head >= store.read_all()[-1].position  # saw the untagged event too
    page = store.read_query(query, after=positions[1], limit=2)
    assert [e.position for e in page.events] == positions[2:4]
    assert page.head == positions[3]
    rest = store.read_query(query, after=page.head)
    assert [e.position for e in rest.events] == positions[4:]


def test_read_query_of_an_empty_store(store: EventStore) -> None:
    result = store.read_query(Query.all())
    assert result.events == []
    assert result.head == 0


def test_iter_query_pages_through_every_match(store: EventStore) -> None:
    for i in range(7):
        put(store, tagged("A", "x", n=i), tagged("B", n=i))
    found = list(store.iter_query(Query.of(QueryItem(tags=["x"])), page_size=3))
    assert [orjson.loads(e.data)["n"] for e in found] == list(range(7))


def test_condition_passes_when_nothing_matched_after_the_head(store: EventStore) -> None:
    """A decision that read the head may append if only unrelated events came since."""
    put(store, tagged("Subscribed", "course:c1"))
    seen = store.read_query(course("c1"))
    put(store, tagged("Subscribed", "course:c2"))  # another course: no conflict
    put(
        store, tagged("Subscribed", "course:c1"), condition=AppendCondition(course("c1"), seen.head)
    )
    assert len(store.read_query(course("c1")).events) == 2


def test_condition_fails_naming_the_query_and_the_first_conflict(store: EventStore) -> None:
    """A matching event after `after` fails the append, naming query and position."""
    seen = store.read_query(course("c1"))
    put(store, tagged("Subscribed", "course:c1", n=1))
    put(store, tagged("Subscribed", "course:c1", n=2))
    first = store.read_query(course("c1")).events[0].position
    stream = new_stream()
    with pytest.raises(ConditionFailedError) as caught:
        store.append(
            stream,
            "S",
            [tagged("Subscribed", "course:c1")],
            expected_version=0,
            condition=AppendCondition(course("c1"), seen.head),
        )
    error = caught.value
    assert isinstance(error, ConcurrencyError)
    assert (error.query, error.after, error.stream_id) == (course("c1"), seen.head, stream)
    assert error.position in {first, 0}  # 0: PostgreSQL met it before it was positioned
    assert "course:c1" in str(error)
    assert f"after position {seen.head}" in str(error)
    assert store.stream_version(stream) == 0
    assert len(store.read_query(course("c1")).events) == 2


def test_condition_without_after_fails_on_any_match(store: EventStore) -> None:
    unique = Query.of(QueryItem(types=["NameClaimed"], tags=["name:ada"]))
    put(store, tagged("NameClaimed", "name:ada"), condition=AppendCondition(unique))
    with pytest.raises(ConditionFailedError) as caught:
        put(store, tagged("NameClaimed", "name:ada"), condition=AppendCondition(unique))
    assert caught.value.after is None
    assert "at all" in str(caught.value)
    assert len(store.read_query(unique).events) == 1


def test_condition_on_the_all_query(store: EventStore) -> None:
    seen = store.read_query(Query.all())
    put(store, tagged("A"))
    with pytest.raises(ConditionFailedError):
        put(store, tagged("B"), condition=AppendCondition(Query.all(), seen.head))


def test_retry_of_a_stored_conditional_append_is_a_no_op(store: EventStore) -> None:
    """Resending an append that committed succeeds again, though its condition now fails."""
    query = course("c9")
    stream = new_stream()
    events = [tagged("Subscribed", "course:c9")]
    condition = AppendCondition(query, store.read_query(query).head)
    first = store.append(stream, "S", events, expected_version=0, condition=condition)
    again = store.append(stream, "S", events, expected_version=0, condition=condition)
    assert again.version == first.version == 1
    assert len(store.read_query(query).events) == 1


def test_retry_with_other_tags_is_a_conflict(store: EventStore) -> None:
    stream = new_stream()
    event = tagged("A", "x")
    store.append(stream, "S", [event], expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        store.append(stream, "S", [event._replace(tags=("y",))], expected_version=0)


def test_stream_check_still_applies_to_conditional_appends(store: EventStore) -> None:
    stream = new_stream()
    store.append(stream, "S", [tagged("A", "x")], expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        store.append(
            stream,
            "S",
            [tagged("A", "x")],
            expected_version=0,
            condition=AppendCondition(Query.of(QueryItem(tags=["nothing"]))),
        )
    assert not isinstance(caught.value, ConditionFailedError)


def test_conditional_append_inside_a_unit_of_work(backend: Backend) -> None:
    """In a unit of work the condition sees the unit's own appends; a failure undoes them."""
    query = course("u1")
    seen = backend.store.read_query(query)
    condition = AppendCondition(query, seen.head)

    def sync(store: Any) -> None:
        with pytest.raises(ConditionFailedError), store.transaction():
            put(store, tagged("Subscribed", "course:u1"))
            put(store, tagged("Subscribed", "course:u1"), condition=condition)
        with store.transaction():
            put(store, tagged("Subscribed", "course:u1"), condition=condition)
            put(store, tagged("Other", "course:u2"))

    async def async_(store: Any) -> None:
        with pytest.raises(ConditionFailedError):
            async with store.transaction():
                await store.append(
                    new_stream(), "S", [tagged("Subscribed", "course:u1")], expected_version=0
                )
                await store.append(
                    new_stream(),
                    "S",
                    [tagged("Subscribed", "course:u1")],
                    expected_version=0,
                    condition=condition,
                )
        async with store.transaction():
            await store.append(
                new_stream(),
                "S",
                [tagged("Subscribed", "course:u1")],
                expected_version=0,
                condition=condition,
            )
            await store.append(
                new_stream(), "S", [tagged("Other", "course:u2")], expected_version=0
            )

    run(backend, sync, async_)
    assert len(backend.store.read_query(query).events) == 1
    assert len(backend.store.read_query(course("u2")).events) == 0  # not a course event type
    assert len(backend.store.read_query(Query.of(QueryItem(tags=["course:u2"]))).events) == 1


# Query semantics against a naive model ------------------------------------------------------

TYPES = ("A", "B", "C")
TAGS = ("t1", "t2", "t3", "t4")
items = st.builds(
    QueryItem,
    types=st.frozensets(st.sampled_from(TYPES), max_size=2),
    tags=st.frozensets(st.sampled_from(TAGS), max_size=2),
)
queries = st.lists(items, max_size=3).map(lambda i: Query.of(*i))
events = st.lists(
    st.tuples(st.sampled_from(TYPES), st.frozensets(st.sampled_from(TAGS), max_size=3)),
    min_size=1,
    max_size=8,
)


def naive(query: Query, event_type: str, tags: Iterable[str]) -> bool:
    if not query.items:
        return True
    return any(
        (not item.types or event_type in item.types) and all(t in tags for t in item.tags)
        for item in query.items
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=events, query=queries)
def test_read_query_matches_a_naive_model(
    store: EventStore, batch: list[tuple[str, frozenset[str]]], query: Query
) -> None:
    """read_query returns exactly the events the naive definition matches, in order."""
    start = store.head()
    # Fresh tags per example, so earlier examples' events stay out of the comparison.
    salt = uuid.uuid4().hex[:8]
    salted = Query.of(
        *(QueryItem(types=i.types, tags={f"{salt}{t}" for t in i.tags}) for i in query.items)
    )
    written = [
        tagged(kind, *(f"{salt}{t}" for t in tags), n=n) for n, (kind, tags) in enumerate(batch)
    ]
    put(store, *written)
    found = store.read_query(salted, after=start)
    expected = [
        e.event_id for e in written if naive(salted, e.event_type, e.tags) or not salted.items
    ]
    assert [e.event_id for e in found.events] == expected
    positions = [e.position for e in found.events]
    assert positions == sorted(positions)
    assert found.head >= max(positions, default=start)


@pytest.mark.parametrize("count", [3, 20])
def test_tags_with_any_characters_in_small_and_large_appends(store: EventStore, count: int) -> None:
    """Tags with quotes, commas, braces, spaces and non-ASCII letters read back as given,
    in appends of a few events and of many (which PostgreSQL sends as arrays)."""
    odd = ['quote:"x"', "comma:a,b", "brace:{1}", "space: y", "back\\slash", "ümlaut:é"]
    events = [tagged("Odd", odd[i % len(odd)], f"n:{i}", n=i) for i in range(count)]
    condition = AppendCondition(
        Query.of(QueryItem(tags=[odd[0]])), store.read_query(Query.all()).head
    )
    store.append(new_stream(), "S", events, expected_version=0, condition=condition)
    for tag in odd[: min(count, len(odd))]:
        found = store.read_query(Query.of(QueryItem(types=["Odd"], tags=[tag])))
        assert found.events
        assert all(tag in e.tags for e in found.events)
    read = store.read_query(Query.of(QueryItem(types=["Odd"])))
    assert [e.tags for e in read.events] == [tuple(sorted(e.tags)) for e in events]
