"""The event store contract.

This module is the source of `_store.py`, which `tools/async_to_sync.py` generates from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from esframework._checks import DEFAULT_PAGE_SIZE
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)

__all__ = ["AsyncEventStore"]


class AsyncEventStore(Protocol):
    """An append-only store of event streams with a global order.

    Every backend keeps the same promises, proven by the contract suite that runs against
    each of them (`tests/stores/` in the repository):

    - events of a stream have versions 1, 2, 3, ... with no gaps, and an append states the
      version it expects the stream at, so concurrent writers cannot both win;
    - every event has a global position; reading in position order never skips an event that
      commits later with a lower position, and never shows a stream's events out of order;
    - appending again events whose ids are stored, with the same content, is a no-op that
      reports the stored positions; different content under a stored id is an error;
    - an append writes all of its events or none, and so does a unit of work
      (`transaction()`): the appends made in it commit together or not at all.
    """

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
    ) -> AppendResult:
        """Append `events` to a stream, atomically.

        Args:
            stream_id: The stream to append to (1 to 255 characters).
            stream_type: The stream's aggregate type, stored with each event.
            events: The events, in order; at least one.
            expected_version: The stream's current version as the caller saw it,
                `ExpectedVersion.NO_STREAM` (or 0) for a new stream, or `ExpectedVersion.ANY`.

        Raises:
            ConcurrencyError: The stream is at another version; nothing was written.
            IdempotencyConflictError: An event id is stored with different content.
            InvalidStreamIdError: The stream id is empty or too long.
            StoreError: The backend failed.
        """
        ...

    def read_stream(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        """Yield a stream's events from `from_version` to `to_version` (inclusive), in order."""
        ...

    def read_payloads(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> AsyncIterator[EventPayload]:
        """Yield what rebuilding an aggregate needs of each event, like `read_stream`.

        Cheaper than `read_stream`: repositories load aggregates with it.
        """
        ...

    async def stream_version(self, stream_id: str) -> int:
        """Return the stream's current version (0 for a stream with no events)."""
        ...

    async def read_all(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        """Return up to `limit` events with positions after `after`, in global order.

        Args:
            after: The last position already seen (0 to start from the beginning).
            limit: The page size.
            stream_types: If given, only events of these stream types.
            event_types: If given, only events of these (stored) event types.
        """
        ...

    async def head(self) -> int:
        """Return the global position of the newest event (0 for an empty store)."""
        ...

    async def version_at(self, stream_id: str, as_of: datetime) -> int:
        """Return the version the stream stood at, at time `as_of` (0: it had no events yet).

        The longest start of the stream whose events were all recorded at or before
        `as_of`: an event recorded later ends it, whatever the events after it (see "Reading
        as of a time" in the guide for the clocks and their precision).

        Raises:
            InvalidTimeError: `as_of` has no time zone.
        """
        ...

    async def position_at(self, as_of: datetime) -> int:
        """Return the global position the store stood at, at time `as_of` (0: empty then).

        Like `version_at`, for the global order: the longest start of it whose events were
        all recorded at or before `as_of`.

        Raises:
            InvalidTimeError: `as_of` has no time zone.
        """
        ...

    async def stored_event_types(self) -> frozenset[str]:
        """Return every event type name stored, each once.

        Cheap whatever the store's size: the durable stores walk their event-type index
        one distinct name at a time. Filtered subscriptions use it to notice events no
        registered class or upcaster maps to.
        """
        ...

    async def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        """Return the stream's latest snapshot, if any."""
        ...

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot, replacing the stream's previous one."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[object]:
        """Open a unit of work: the appends made in the block commit together, or none.

        Each append in it keeps its own optimistic concurrency check and idempotency, and
        the block fails as a whole if any of them fails. Opened again inside the block (by
        the same thread or task), it joins the open unit.
        """
        ...

    async def close(self) -> None:
        """Release the store's connections."""
        ...

    async def iter_all(
        self,
        *,
        after: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
        as_of: datetime | None = None,
    ) -> AsyncIterator[StoredEvent]:
        """Yield every event after `after` in global order, reading page by page.

        With `as_of`, only the events of the global order as it stood at that time (up to
        `position_at(as_of)`).
        """
        until = None if as_of is None else await self.position_at(as_of)
        while page := await self.read_all(
            after=after, limit=page_size, stream_types=stream_types, event_types=event_types
        ):
            for event in page:
                if until is not None and event.position > until:
                    return
                yield event
            after = page[-1].position
