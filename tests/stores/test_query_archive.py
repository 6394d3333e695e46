"""Tags and queries across the archive: archived events keep their tags, and reads by query
and append conditions still see them, on SQLite and PostgreSQL, sync and async."""

from __future__ import annotations

import pytest

from esframework import (
    AppendCondition,
    ConditionFailedError,
    ExpectedVersion,
    Query,
    QueryItem,
    SnapshotRecord,
)
from tests.conftest import Backend
from tests.stores.test_archive import DURABLE, _archive_all, _count
from tests.stores.test_queries import tagged


@pytest.mark.parametrize("backend", DURABLE, indirect=True)
def test_archived_events_keep_their_tags_for_queries_and_conditions(backend: Backend) -> None:
    """Archiving moves tagged events with their tags: queries read them as before, and a
    condition after a position before them still fails on them."""
    store = backend.store
    course = Query.of(QueryItem(types=["Subscribed"], tags=["course:a1"]))
    events = [tagged("Subscribed", "course:a1", f"student:{i}", n=i) for i in range(6)]
    store.append("cut", "S", events, expected_version=ExpectedVersion.NO_STREAM)
    store.save_snapshot(
        SnapshotRecord(stream_id="cut", stream_type="S", state_schema="x", version=5, data="{}")
    )
    store.truncate_before("cut", 5)
    before = store.read_query(course)
    assert _archive_all(store) == 4
    assert _count(backend, "events_archive") == 4
    after = store.read_query(course)
    assert after.events == before.events
    assert [e.tags for e in after.events[:2]] == [
        ("course:a1", "student:0"),
        ("course:a1", "student:1"),
    ]
    student = Query.of(QueryItem(tags=["student:1"]))
    assert [e.version for e in store.read_query(student).events] == [2]
    assert list(store.iter_query(course, page_size=2)) == before.events
    with pytest.raises(ConditionFailedError) as caught:
        store.append(
            "other",
            "S",
            [tagged("Subscribed", "course:a1")],
            expected_version=0,
            condition=AppendCondition(student, after=0),
        )
    assert caught.value.position == before.events[1].position
    with pytest.raises(ConditionFailedError):
        store.append(
            "other",
            "S",
            [tagged("Subscribed", "course:a1")],
            expected_version=0,
            condition=AppendCondition(student),
        )
    store.append(
        "other",
        "S",
        [tagged("Subscribed", "course:a1")],
        expected_version=0,
        condition=AppendCondition(student, after=before.events[1].position),
    )
