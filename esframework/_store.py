"""The event store contract, and the checks every backend shares.

Backends only run statements; the decisions (is this stream id valid, does this version
conflict, is this append a retry of one already stored) live here, once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Protocol
from uuid import UUID

import orjson

from esframework._records import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
    StoredEvent,
)
from esframework.errors import ConcurrencyError, IdempotencyConflictError, InvalidStreamIdError

__all__ = [
    "MAX_STREAM_ID_LENGTH",
    "EventStore",
    "check_expected_version",
    "expected_as_int",
    "match_retry",
    "validate_stream_id",
]

MAX_STREAM_ID_LENGTH = 255
"""The seed schema's `VARCHAR(255)`; every backend enforces the same limit."""

DEFAULT_PAGE_SIZE = 1000


class EventStore(Protocol):
    """An append-only store of event streams with a global order.

    Every backend keeps the same promises, proven by the contract suite in
    `esframework.testing`:

    - events of a stream have versions 1, 2, 3, ... with no gaps, and an append states the
      version it expects the stream at, so concurrent writers cannot both win;
    - every event has a global position; reading in position order never skips an event that
      commits later with a lower position, and never shows a stream's events out of order;
    - appending again events whose ids are stored, with the same content, is a no-op that
      reports the stored positions; different content under a stored id is an error;
    - an append writes all of its events or none.
    """

    def append(
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
    ) -> Iterator[StoredEvent]:
        """Yield a stream's events from `from_version` to `to_version` (inclusive), in order."""
        ...

    def stream_version(self, stream_id: str) -> int:
        """Return the stream's current version (0 for a stream with no events)."""
        ...

    def read_all(
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

    def head(self) -> int:
        """Return the global position of the newest event (0 for an empty store)."""
        ...

    def load_snapshot(self, stream_id: str) -> SnapshotRecord | None:
        """Return the stream's latest snapshot, if any."""
        ...

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot, replacing the stream's previous one."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...

    def iter_all(
        self,
        *,
        after: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        stream_types: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
    ) -> Iterator[StoredEvent]:
        """Yield every event after `after` in global order, reading page by page."""
        while page := self.read_all(
            after=after, limit=page_size, stream_types=stream_types, event_types=event_types
        ):
            yield from page
            after = page[-1].position


def validate_stream_id(stream_id: str) -> None:
    """Raise `InvalidStreamIdError` unless every backend can store `stream_id` as it is."""
    if not stream_id:
        raise InvalidStreamIdError(stream_id, "it is empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidStreamIdError(
            stream_id, f"it has {len(stream_id)} characters, more than {MAX_STREAM_ID_LENGTH}"
        )
    if "\x00" in stream_id:
        raise InvalidStreamIdError(stream_id, "it contains a NUL character")


def expected_as_int(expected: int | ExpectedVersion) -> int | None:
    """Return the version an append expects, or None for `ExpectedVersion.ANY`."""
    if expected is ExpectedVersion.ANY:
        return None
    if expected is ExpectedVersion.NO_STREAM:
        return 0
    if expected < 0:
        msg = f"expected_version must be 0 or more, got {expected}"
        raise ValueError(msg)
    return expected


def check_expected_version(stream_id: str, expected: int | None, actual: int) -> None:
    """Raise `ConcurrencyError` if the stream is not at the expected version."""
    if expected is not None and expected != actual:
        raise ConcurrencyError(stream_id, expected, actual)


def match_retry(
    stream_id: str, events: Sequence[NewEvent], stored: Mapping[UUID, StoredEvent]
) -> AppendResult | None:
    """Decide whether an append repeats one already stored.

    Args:
        stream_id: The stream being appended to.
        events: The events being appended.
        stored: The stored events whose ids are among `events`' ids.

    Returns:
        None if no event id is stored (a fresh append), or the stored positions if every
        event is stored with the same content (a retry of a write that committed).

    Raises:
        IdempotencyConflictError: Some ids are stored and some not, or an id is stored with
            other content: this is not a retry, and must not be written.
    """
    if not stored:
        return None
    for new in events:
        old = stored.get(new.event_id)
        if old is None or not _same_content(stream_id, new, old):
            culprit = new if old is not None else next(e for e in events if e.event_id in stored)
            raise IdempotencyConflictError(str(culprit.event_id), stream_id)
    found = [stored[e.event_id] for e in events]
    return AppendResult(
        stream_id=stream_id,
        version=max(e.version for e in found),
        positions=tuple(e.position for e in found),
    )


def _same_content(stream_id: str, new: NewEvent, old: StoredEvent) -> bool:
    # Compare decoded JSON: a database may store it with other spacing or key order.
    return (
        old.stream_id == stream_id
        and old.event_type == new.event_type
        and old.schema_version == new.schema_version
        and orjson.loads(old.data) == orjson.loads(new.data)
        and orjson.loads(old.metadata) == orjson.loads(new.metadata)
    )


def stored_by_id(events: Iterable[StoredEvent]) -> dict[UUID, StoredEvent]:
    """Index stored events by their event id (for `match_retry`)."""
    return {e.event_id: e for e in events}
