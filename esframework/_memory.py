"""An event store in a Python list, for fast tests and experiments."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID

from esframework._checks import (
    DEFAULT_PAGE_SIZE,
    check_append,
    check_expected_version,
    check_read_range,
    check_stream_type,
    match_retry,
    utc_time,
    validate_stream_id,
)
from esframework._personal._sealing import new_key, validate_subject
from esframework._queries import (
    AppendCondition,
    Query,
    QueryResult,
    stored_tags,
)
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._retention import (
    check_open,
    check_truncation,
    is_tombstone,
)
from esframework._store import EventStore
from esframework.errors import ConditionFailedError

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(EventStore):
    """Keeps events in memory, with the same semantics as the durable stores.

    Safe to share between threads. Everything is lost when the process ends.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # held by a unit of work, whose appends re-enter it
        self._events: list[StoredEvent] = []  # index = position - 1
        self._streams: dict[str, list[StoredEvent]] = {}
        self._by_id: dict[UUID, StoredEvent] = {}
        self._event_types: set[str] = set()
        self._snapshots: dict[str, SnapshotRecord] = {}
        # Truncation points (tombstones included): stream reads start there. A memory
        # store has no archive: the events before them stay, for `include_archived` reads.
        self._cuts: dict[str, int] = {}
        self._keys: dict[str, bytes | None] = {}  # None: the subject was forgotten

    def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        expected = check_append(stream_id, stream_type, events, expected_version)
        with self._lock:
            stored = {
                e.event_id: self._by_id[e.event_id] for e in events if e.event_id in self._by_id
            }
            retry = match_retry(stream_id, stream_type, events, stored)
            if retry is not None:
                return retry
            stream = self._streams.get(stream_id, [])
            check_open(stream_id, stream[-1].event_type if stream else None, len(stream))
            check_stream_type(stream_id, stream_type, stream[-1].stream_type if stream else None)
            check_expected_version(stream_id, expected, len(stream))
            if condition is not None:
                self._check_condition(stream_id, condition)
            now = datetime.now(UTC)
            new = [
                StoredEvent(
                    event_id=e.event_id,
                    stream_id=stream_id,
                    stream_type=stream_type,
                    event_type=e.event_type,
                    schema_version=e.schema_version,
                    data=e.data,
                    metadata=e.metadata,
                    version=len(stream) + i,
                    position=len(self._events) + i,
                    recorded_at=now,
                    tags=stored_tags(e.tags),
                )
                for i, e in enumerate(events, start=1)
            ]
            self._events.extend(new)
            self._streams[stream_id] = stream + new
            self._by_id.update((e.event_id, e) for e in new)
            self._event_types.update(e.event_type for e in new)
            if is_tombstone(new[-1].event_type):
                self._cuts[stream_id] = new[-1].version
        return AppendResult(
            stream_id=stream_id,
            version=len(stream) + len(new),
            positions=tuple(e.position for e in new),
        )

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> Iterator[StoredEvent]:
        with self._lock:  # an open unit of work's events are not seen by other threads
            stream = self._streams.get(stream_id, [])
            if not include_archived:
                from_version = max(from_version, self._cuts.get(stream_id, 1))
        # A negative bound must read nothing, as in SQL, not count from the stream's end.
        last = None if to_version is None else max(to_version, 0)
        yield from stream[max(from_version, 1) - 1 : last]

    def read_payloads(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> Iterator[EventPayload]:
        for e in self.read_stream(
            stream_id,
            from_version=from_version,
            to_version=to_version,
            include_archived=include_archived,
        ):
            yield EventPayload(
                e.stream_id,
                e.version,
                e.position,
                e.event_type,
                e.schema_version,
                e.data,
                e.stream_type,
            )

    def stream_version(self, stream_id: str) -> int:
        with self._lock:
            return len(self._streams.get(stream_id, ()))

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        check_read_range("read_all", after, limit, unlimited=False)
        page: list[StoredEvent] = []
        with self._lock:
            events = self._events[after:]
        for e in events:
            if len(page) == limit:
                break
            if (stream_types is None or e.stream_type in stream_types) and (
                event_types is None or e.event_type in event_types
            ):
                page.append(e)
        return page

    def _check_condition(self, stream_id: str, condition: AppendCondition) -> None:
        # Under the store's lock, which every append holds: nothing commits meanwhile.
        query = condition.fail_if_events_match
        for e in self._events[max(condition.after or 0, 0) :]:
            if query.matches(e.event_type, e.tags):
                raise ConditionFailedError(query, condition.after, e.position, stream_id)

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryResult:
        check_read_range("read_query", after, limit, unlimited=True)
        with self._lock:
            events = self._events[after:]
            head = len(self._events)
        found: list[StoredEvent] = []
        for e in events:
            if query.matches(e.event_type, e.tags):
                if len(found) == limit:
                    # Cut short: the decision saw the store up to the last event it got.
                    return QueryResult(found, found[-1].position if found else after)
                found.append(e)
        return QueryResult(found, max(head, after))

    def head(self) -> int:
        with self._lock:
            return len(self._events)

    def version_at(self, stream_id: str, as_of: datetime) -> int:
        as_of = utc_time(as_of)
        with self._lock:
            stream = self._streams.get(stream_id, [])
        return _prefix_until(stream, as_of)

    def position_at(self, as_of: datetime) -> int:
        as_of = utc_time(as_of)
        with self._lock:
            events = list(self._events)
        return _prefix_until(events, as_of)

    def stored_event_types(self) -> frozenset[str]:
        return frozenset(self._event_types)

    def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        with self._lock:
            return self._snapshots.get(stream_id)

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        with self._lock:
            current = self._snapshots.get(snapshot.stream_id)
            if current is None or current.version <= snapshot.version:
                self._snapshots[snapshot.stream_id] = snapshot

    def truncate_before(self, stream_id: str, version: int) -> None:
        validate_stream_id(stream_id)
        with self._lock:
            snapshot = self._snapshots.get(stream_id)
            check_truncation(stream_id, version, None if snapshot is None else snapshot.version)
            self._cuts[stream_id] = max(version, self._cuts.get(stream_id, 1))

    def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        with self._lock:
            for subject in subjects:
                if create and subject not in self._keys:
                    self._keys[validate_subject(subject)] = new_key()
            return {s: self._keys[s] for s in subjects if s in self._keys}

    def delete_personal_data_key(self, subject: str) -> None:
        with self._lock:
            self._keys[validate_subject(subject)] = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Open a unit of work: appends, snapshots, truncations and the keys made or
        forgotten in this block are kept together, or undone together if it raises.

        The calling thread holds the store until the block ends: other threads' calls wait
        (a memory store has one writer at a time, like SQLite).
        """
        with self._lock:
            events = len(self._events)
            streams = dict(self._streams)
            snapshots = dict(self._snapshots)
            cuts = dict(self._cuts)
            event_types = set(self._event_types)
            keys = dict(self._keys)  # forgetting in the unit is undone too, as in SQL
            try:
                yield
            except BaseException:
                for e in self._events[events:]:
                    del self._by_id[e.event_id]
                del self._events[events:]
                self._streams, self._snapshots, self._cuts = streams, snapshots, cuts
                self._event_types, self._keys = event_types, keys
                raise

    def close(self) -> None:
        """Do nothing: there is nothing to release."""


def _prefix_until(events: Sequence[StoredEvent], as_of: datetime) -> int:
    # The length of the longest start of `events` recorded at or before `as_of`.
    for count, e in enumerate(events):
        if e.recorded_at > as_of:
            return count
    return len(events)
