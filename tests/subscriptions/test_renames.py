"""A subscription filtered by event class never passes silently over events it cannot read."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from esframework import Envelope, NewEvent, Serializer, Upcasters, event
from esframework.errors import UnmappedEventTypesError
from tests.subscriptions.conftest import Harness, Sql


# "TestNoteJotted" (version 1) was renamed "TestNoteFiled" (version 2).
@event(name="TestNoteFiled", version=2)
class NoteFiled:
    text: str


renamed = Upcasters()


@renamed.register("TestNoteJotted", from_version=1, rename_to="TestNoteFiled")
def _same_fields(data: dict[str, Any]) -> dict[str, Any]:
    return data


def note(event_type: str, version: int, text: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, version, orjson.dumps({"text": text}).decode())


def store_notes(harness: Harness) -> None:
    """Two notes stored under the old name, then one under the new."""
    harness.store.append(
        "notes",
        "TestNotebook",
        [note("TestNoteJotted", 1, "old 1"), note("TestNoteJotted", 1, "old 2")],
        expected_version=0,
    )
    harness.store.append(
        "notes", "TestNotebook", [note("TestNoteFiled", 2, "new")], expected_version=2
    )


def record_texts(seen: list[str]) -> Any:
    def handle(envelope: Envelope[Any], _: Sql) -> None:
        seen.append(envelope.event.text)

    return handle


def test_a_renamed_class_without_an_upcaster_stops_the_subscription(harness: Harness) -> None:
    """Old events stored under a name nothing maps to stop a class-filtered subscription
    before it delivers anything or moves its checkpoint past them."""
    store_notes(harness)
    seen: list[str] = []
    worker = harness.worker(record_texts(seen), event_types=[NoteFiled])
    with pytest.raises(UnmappedEventTypesError) as caught:
        worker.run(until_caught_up=True)
    assert caught.value.event_types == ("TestNoteJotted",)
    assert caught.value.subscription == "test"
    assert "'TestNoteJotted'" in str(caught.value)
    assert seen == []
    assert harness.store.load_checkpoint("test") is None
    projection = harness.worker(record_texts(seen), reset=lambda _: None, event_types=[NoteFiled])
    with pytest.raises(UnmappedEventTypesError):
        projection.rebuild()
    assert harness.store.load_checkpoint("test") is None


def test_a_type_stored_while_running_is_noticed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs again while the worker runs (every minute; here at every page)."""
    from esframework import _subscription_worker, _subscription_worker_async

    monkeypatch.setattr(_subscription_worker, "_TYPES_EVERY", 0.0)
    monkeypatch.setattr(_subscription_worker_async, "_TYPES_EVERY", 0.0)
    harness.store.append(
        "notes", "TestNotebook", [note("TestNoteFiled", 2, "new")], expected_version=0
    )
    delivered = threading.Event()

    def handle(_: Envelope[Any], __: Sql) -> None:
        delivered.set()

    worker = harness.worker(handle, event_types=[NoteFiled])
    running = run_in_background(harness, worker)
    try:
        assert delivered.wait(30)
        harness.store.append(
            "late", "TestNotebook", [note("TestNoteJotted", 1, "late")], expected_version=0
        )
        with pytest.raises(UnmappedEventTypesError):
            running.result(timeout=30)
    finally:
        worker.stopper.set()  # so a failing run does not outlive the test


def run_in_background(harness: Harness, worker: Any) -> Future[None]:
    """Run the worker until it stops, in a thread (sync) or on the test loop (async)."""
    if harness.is_async:
        return worker.run_in_background()  # type: ignore[no-any-return]
    return ThreadPoolExecutor(max_workers=1).submit(worker.run)


def test_with_the_upcaster_the_old_events_are_delivered(harness: Harness) -> None:
    """Registering the rename's upcaster makes the filter read the old name too."""
    store_notes(harness)
    seen: list[str] = []
    harness.worker(
        record_texts(seen), event_types=[NoteFiled], serializer=Serializer(upcasters=renamed)
    ).run(until_caught_up=True)
    assert seen == ["old 1", "old 2", "new"]


def test_another_applications_types_can_be_ignored_by_name(harness: Harness) -> None:
    """Stored types listed in ignored_event_types are known to be someone else's."""
    store_notes(harness)
    seen: list[str] = []
    harness.worker(
        record_texts(seen), event_types=[NoteFiled], ignored_event_types=["TestNoteJotted"]
    ).run(until_caught_up=True)
    assert seen == ["new"]
    assert harness.store.load_checkpoint("test") == harness.store.head()


def test_unfiltered_and_stream_filtered_subscriptions_are_not_checked(harness: Harness) -> None:
    """Without a class filter every event is decoded, so an unreadable one fails loudly
    on its own: the check is not needed (nor run)."""
    harness.store.append(
        "other", "TestElsewhere", [note("TestNeverRegistered", 1, "x")], expected_version=0
    )
    seen: list[str] = []
    harness.worker(record_texts(seen), stream_types=["TestNotebook"]).run(until_caught_up=True)
    assert seen == []
