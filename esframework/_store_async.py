"""The event store contract.

This module is the source of `_store.py`, which `tools/async_to_sync.py` generates from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from esframework._checks import DEFAULT_PAGE_SIZE, validate_payloads, validate_stream_id
from esframework._personal._forgetting import (
    FORGOTTEN_STREAM_TYPE,
    forgotten_event,
    forgotten_stream,
)
from esframework._personal._keys_async import AsyncKeyStore
from esframework._queries import AppendCondition, Query, QueryResult
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework._retention import tombstone_event
from esframework.errors import IdempotencyConflictError, StreamClosedError

__all__ = ["AsyncEventStore"]


class AsyncEventStore(AsyncKeyStore, Protocol):
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
      (`transaction()`): the appends made in it commit together or not at all;
    - a stream closed by `tombstone` takes no more events, and a stream truncated by
      `truncate_before` reads from its truncation point unless a read asks for the archived
      part too (`include_archived=True`); global reads always see every event;
    - the keys of data subjects (`personal_data_keys`) stay the same until the subject is
      forgotten, and are gone for good after;
    - events carry tags, and `read_query` reads the events a query matches in global order;
      an append with a condition fails, writing nothing, if the condition's query matches an
      event stored after the condition's `after`, whoever appended it and however late it
      committed (see "Consistency boundaries" in the concepts).
    """

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        """Append `events` to a stream, atomically.

        Args:
            stream_id: The stream to append to (1 to 255 characters).
            stream_type: The stream's aggregate type, stored with each event.
            events: The events, in order; at least one.
            expected_version: The stream's current version as the caller saw it,
                `ExpectedVersion.NO_STREAM` (or 0) for a new stream, or `ExpectedVersion.ANY`.
            condition: If given, the append fails unless no event matching
                `condition.fail_if_events_match` was stored after `condition.after`,
                counting events appended concurrently that commit before this append. An
                idempotent retry of stored events is a no-op whatever the condition.

        Raises:
            ConcurrencyError: The stream is at another version; nothing was written.
            ConditionFailedError: The condition's query matched an event stored after
                `condition.after`; nothing was written.
            IdempotencyConflictError: An event id is stored with different content.
            InvalidStreamIdError: The stream id is empty or too long.
            InvalidTagError: An event's tag cannot be stored.
            InvalidTypeNameError: The stream type or an event type cannot be stored.
            InvalidVersionError: `expected_version` is no version a stream can have (below
                0, past ``2**63 - 1``, not an int); nothing was written.
            EventEncodingError: An event id is not a `UUID`, or an event's `data` or
                `metadata` is not a JSON object in text that every store keeps (not JSON,
                NaN, an array, a string holding ``\\u0000``); nothing was written.
            StoreError: The backend failed.
        """
        ...

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
    ) -> AsyncIterator[StoredEvent]:
        """Yield a stream's events from `from_version` to `to_version` (inclusive), in order.

        A truncated stream (see `truncate_before`; a closed stream is truncated before its
        tombstone) yields nothing before its truncation point, archived or not yet, unless
        `include_archived` is set: then every event from `from_version` on, from the archive
        and the hot table alike.
        """
        ...

    def read_payloads(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        include_archived: bool = False,
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

        Raises:
            InvalidPositionError: `after` or `limit` is not a whole number from 0 to
                ``2**63 - 1``; nothing was read.
        """
        ...

    async def read_query(
        self, query: Query, *, after: int = 0, limit: int | None = None
    ) -> QueryResult:
        """Return the events `query` matches after position `after`, in global order.

        Archived events are read too: a query sees every event, like `read_all`.

        Args:
            query: The events to read (`Query.all()` for every event).
            after: The last position already seen (0 to start from the beginning).
            limit: At most this many events (None: every matching one).

        Returns:
            The events, and the head to use as the `after` of an `AppendCondition` on
            this query: every event it matches up to the head is among the events.

        Raises:
            InvalidPositionError: `after`, or `limit` unless None, is not a whole number
                from 0 to ``2**63 - 1``; nothing was read.
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

    async def truncate_before(self, stream_id: str, version: int) -> None:
        """Record that loads no longer need the stream's events before `version`.

        From then on stream reads start at `version` (unless they include the archived
        part), and the archive pass may move the events before it to the archive table. A
        truncation point never moves back: truncating before an earlier version does nothing.

        Raises:
            InvalidTruncationError: `version` is below 1 or above the stream's latest
                snapshot (loads start there, so they need every event after it); nothing
                was written.
            InvalidStreamIdError: The stream id is empty or too long.
        """
        ...

    async def tombstone(
        self,
        stream_id: str,
        *,
        expected_version: int | ExpectedVersion,
        stream_type: str | None = None,
        metadata: str = "{}",
    ) -> AppendResult:
        """Close a stream for good: append its tombstone, after which it takes no events.

        The tombstone (`StreamClosed`, stored as `CLOSED_EVENT_TYPE`) takes the stream's
        next version, with the same concurrency check as any append, and reaches
        subscriptions in the global order. The stream is then truncated before it: stream
        reads show the tombstone alone unless they include the archived part, and the
        archive pass moves the events before it. Closing a closed stream again with the same
        metadata is an idempotent retry.

        Args:
            stream_id: The stream to close.
            expected_version: The stream's current version as the caller saw it, or
                `ExpectedVersion.ANY`.
            stream_type: The stream's aggregate type; read from the stream if not given (a
                stream with no events needs it: closing it keeps its id from ever being used).
            metadata: The tombstone's metadata as a JSON object, in text (who closed the
                stream, and why).

        Returns:
            Where the tombstone landed: its version is the stream's last.

        Raises:
            ConcurrencyError: The stream is at another version; nothing was written.
            StreamClosedError: The stream is closed already (with other metadata).
            StreamTypeMismatchError: `stream_type` is not the stream's.
            ValueError: The stream has no events and no `stream_type` was given.
        """
        validate_stream_id(stream_id)
        if stream_type is None:
            stream_type = await self._stream_type(stream_id)
        tombstone = tombstone_event(stream_id, metadata)
        try:
            return await self.append(
                stream_id, stream_type, [tombstone], expected_version=expected_version
            )
        except IdempotencyConflictError as conflict:
            if conflict.event_id != str(tombstone.event_id):
                raise
            closed_at = await self.stream_version(stream_id)
            raise StreamClosedError(stream_id, closed_at) from None

    async def _stream_type(self, stream_id: str) -> str:
        version = await self.stream_version(stream_id)
        stream_type = None
        async for last in self.read_stream(stream_id, from_version=max(version, 1)):
            stream_type = last.stream_type
        if stream_type is None:
            msg = f"stream {stream_id!r} has no events: give its stream_type to close it"
            raise ValueError(msg)
        return stream_type

    async def forget_personal_data(
        self, subject: str, *, keys: AsyncKeyStore | None = None, metadata: str = "{}"
    ) -> AppendResult:
        """Forget a data subject: delete their key, then record `PersonalDataForgotten`.

        From then on the subject's personal fields read as their placeholders in every load,
        subscription and command-line read, and saves of new personal data of theirs fail
        with `SubjectForgottenError`. No event is rewritten. The event goes to the subject's
        own stream (`"$personal-data-<subject>"`) so subscriptions learn of it; forgetting
        again is an idempotent retry.

        Args:
            subject: The subject's id, as its events' subject fields hold it.
            keys: Where the subject's key lives, if not in this store's key table.
            metadata: The event's metadata as a JSON object, in text (who asked, and why).

        Raises:
            InvalidSubjectError: The subject id is empty or too long; nothing was done.
            EventEncodingError: The metadata is not a JSON object that every store keeps;
                nothing was done.
        """
        stream_id = forgotten_stream(subject)
        record = forgotten_event(subject, metadata)
        validate_payloads(stream_id, [record])  # bad metadata: refused before the key goes
        await (keys or self).delete_personal_data_key(subject)
        try:
            return await self.append(
                stream_id, FORGOTTEN_STREAM_TYPE, [record], expected_version=ExpectedVersion.ANY
            )
        except IdempotencyConflictError as conflict:  # recorded before, with other metadata
            if conflict.event_id != str(record.event_id):
                raise
            return AppendResult(stream_id, await self.stream_version(stream_id), ())

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

    async def iter_query(
        self, query: Query, *, after: int = 0, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[StoredEvent]:
        """Yield every event `query` matches after `after` in global order, page by page."""
        while (page := await self.read_query(query, after=after, limit=page_size)).events:
            for event in page.events:
                yield event
            after = page.events[-1].position
