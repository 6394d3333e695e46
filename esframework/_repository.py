# WARNING: generated from _repository_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The repository: load an aggregate from its snapshot and later events; save new events."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

from esframework import _instrumentation
from esframework._aggregates import (
    AggregateType,
    PendingEvent,
    aggregate_id,
    aggregate_type,
    aggregate_version,
    mark_applied,
    mark_saved,
    pending_events,
    replayed,
)
from esframework._checks import validate_stream_id
from esframework._envelope import NO_METADATA, Envelope, Metadata
from esframework._instrumentation import TRACEPARENT
from esframework._personal._keyring import Keyring
from esframework._personal._keys import KeyStore
from esframework._records import AppendResult, NewEvent, SaveResult, SnapshotRecord
from esframework._retention import is_tombstone
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._store import EventStore
from esframework.errors import (
    AggregateNotFoundError,
    InvalidVersionError,
    StreamClosedError,
    StreamTypeMismatchError,
    VersionNotFoundError,
)

__all__ = ["Repository"]

A = TypeVar("A")

logger = logging.getLogger(__name__)


class Repository(Generic[A]):
    """Loads and saves aggregates of one type.

    Args:
        aggregate_class: The `@aggregate` class this repository stores.
        store: Where the events and snapshots live.
        serializer: Encodes and decodes events; the default uses the registered upcasters.
        keys: Where the keys of data subjects live (see `personal`); the store's own key
            table unless given another key store.

    Example:
        >>> accounts = Repository(Account, store=store)  # doctest: +SKIP
    """

    def __init__(
        self,
        aggregate_class: type[A],
        *,
        store: EventStore,
        serializer: Serializer = DEFAULT_SERIALIZER,
        keys: KeyStore | None = None,
    ) -> None:
        self._type: AggregateType = aggregate_type(aggregate_class)
        self._class = aggregate_class
        self.store = store
        self.serializer = serializer
        self.keys: KeyStore = store if keys is None else keys

    def load(
        self,
        aggregate_id: str,
        *,
        at_version: int | None = None,
        as_of: datetime | None = None,
    ) -> A:
        """Return the aggregate's current state, or its state as of a version or a time.

        Starts from the latest usable snapshot and applies only the events after it.

        Args:
            aggregate_id: The stream to load.
            at_version: The version to load the state as of, from 1 to the stream's
                version; None for the current state.
            as_of: A time (timezone-aware) to load the state as of: the events recorded
                at or before it (see `EventStore.version_at`). Not with `at_version`.

        Raises:
            InvalidVersionError: `at_version` is below 1 (a `ValueError`); nothing was read.
            InvalidTimeError: `as_of` has no time zone (a `ValueError`); nothing was read.
            AggregateNotFoundError: The stream has no events (its `version` is `at_version`,
                or None), or had none yet at `as_of`.
            VersionNotFoundError: The stream exists but its version is below `at_version`
                (an `AggregateNotFoundError`, naming both versions).
            StreamTypeMismatchError: The stream (or its snapshot) is of another aggregate type.
            EventDecodingError: A stored event cannot be decoded.
            MissingHandlerError: The aggregate has no handler for a stored event.
        """
        validate_stream_id(aggregate_id)
        if as_of is not None:
            if at_version is not None:
                msg = "load takes at_version or as_of, not both"
                raise ValueError(msg)
            at_version = self.store.version_at(aggregate_id, as_of)
            if at_version == 0:
                raise AggregateNotFoundError(aggregate_id, self._type.stream_type, None)
        if at_version is not None and at_version < 1:
            # Checked here, not left to the stores: a negative bound reads differently on each.
            raise InvalidVersionError(aggregate_id, at_version)
        stream_type = self._type.stream_type
        with _instrumentation.active.load(aggregate_id, stream_type, at_version) as probe:
            instance, version = self._from_snapshot(aggregate_id, at_version)
            with _instrumentation.active.read_stream(
                aggregate_id, stream_type, version + 1
            ) as read:
                start = version
                version = self._apply_stream(instance, aggregate_id, version, at_version)
                read.read(version - start)
            if version == 0:
                raise AggregateNotFoundError(aggregate_id, stream_type, at_version)
            if at_version is not None and version < at_version:
                # The read went up to at_version and stopped short: version is the stream's head.
                raise VersionNotFoundError(aggregate_id, stream_type, at_version, version)
            probe.loaded(version)
        mark_applied(instance, version)
        return instance

    def _apply_stream(
        self, instance: A, aggregate_id: str, version: int, at_version: int | None
    ) -> int:
        """Apply the stream's events after `version` (up to `at_version`); return the last
        version applied.

        The stream read starts at the stream's truncation point. If that is past `version`
        (no usable snapshot covers the truncated part), the read skips ahead or, without a
        snapshot, may find nothing: then the events are read again, the archived ones too.
        So does a read that a truncation overtook between two of its pages: it goes on
        after the last event applied, never applying one twice. A read that starts at a
        tombstone raises at once, without reading the history it closed.

        Raises:
            StreamClosedError: The read met the stream's tombstone.
        """
        applied, whole = self._apply_from(instance, aggregate_id, version, at_version, False)
        if not whole or applied == 0:
            applied, _ = self._apply_from(instance, aggregate_id, applied, at_version, True)
        return applied

    def _apply_from(
        self,
        instance: A,
        aggregate_id: str,
        version: int,
        at_version: int | None,
        include_archived: bool,
    ) -> tuple[int, bool]:
        """Apply the events a read yields; return the last version applied, and False if
        the read skipped past the next one (the events after it are left unapplied)."""
        stream_type = self._type.stream_type
        apply, decode = self._type.apply, self.serializer.decode_event
        keyring = Keyring(self.keys)
        applied = version
        for payload in self.store.read_payloads(
            aggregate_id,
            from_version=version + 1,
            to_version=at_version,
            include_archived=include_archived,
        ):
            if payload.stream_type != stream_type:
                raise StreamTypeMismatchError(aggregate_id, stream_type, payload.stream_type)
            if is_tombstone(payload.event_type):
                raise StreamClosedError(aggregate_id, payload.version)
            if payload.version != applied + 1:  # the read was truncated, before or meanwhile
                return applied, False
            apply(instance, decode(payload, keyring.for_data(payload.data)))
            applied = payload.version
        return applied, True

    def tombstone(self, aggregate: A, *, metadata: Metadata | None = None) -> AppendResult:
        """Close the aggregate's stream for good, after saving its pending events.

        The pending events and the tombstone commit together, in one unit of work, at the
        version the aggregate was loaded at: a concurrent save makes it fail with
        `ConcurrencyError`, writing nothing. Subscriptions then receive `StreamClosed`;
        later saves raise `StreamClosedError`, and so do loads (the state before the
        tombstone still loads with `at_version`).

        Args:
            aggregate: The aggregate, created with `new` or loaded from this repository.
            metadata: Who closes the stream, and why: the tombstone's metadata (and that of
                the pending events, as in `save`).

        Returns:
            Where the tombstone landed.

        Raises:
            ConcurrencyError: The stream changed since the aggregate was loaded; nothing
                was written.
            StreamClosedError: The stream is closed already.
        """
        with self.store.transaction():
            if pending_events(aggregate):
                self.save(aggregate, metadata=metadata)
            return self.store.tombstone(
                aggregate_id(aggregate),
                expected_version=aggregate_version(aggregate),
                stream_type=self._type.stream_type,
                metadata=self.serializer.encode_metadata(metadata or NO_METADATA),
            )

    def save(
        self, aggregate: A, *, metadata: Metadata | None = None, snapshot: bool = False
    ) -> SaveResult | None:
        """Append the aggregate's pending events, expecting the version it was loaded at.

        Once the events are committed, `save` does not raise: a snapshot that fails after
        them (by policy or with `snapshot=True`) is logged and reported as the result's
        `snapshot_error`, so a caller never retries a command whose events are stored.

        Args:
            aggregate: The aggregate, created with `new` or loaded from this repository.
            metadata: Correlation, causation and extra facts for every pending event (an
                event's own metadata from `emit` takes precedence).
            snapshot: Also take a snapshot after saving, whatever the snapshot policy says.
                With nothing pending, only the snapshot is taken, and its failure raises.

        Returns:
            Where the events landed and whether the snapshot failed, or None if there was
            nothing to save.

        Raises:
            ConcurrencyError: The stream changed since the aggregate was loaded; nothing was
                written. Load it again and retry the command.
            StreamTypeMismatchError: The stream holds another aggregate type; nothing was
                written.
            EventEncodingError: An event holds a value that cannot be stored; nothing was
                written (or, with nothing pending and `snapshot=True`, the state cannot).
        """
        pending = pending_events(aggregate)
        if not pending:
            if snapshot:
                self.take_snapshot(aggregate)
            return None
        stream_id = aggregate_id(aggregate)
        version = aggregate_version(aggregate)
        loaded_at = version - len(pending)
        stream_type = self._type.stream_type
        with _instrumentation.active.save(stream_id, stream_type, len(pending)) as probe:
            records = self._encode(pending, metadata, probe.traceparent(), stream_id)
            with probe.append(records, loaded_at) as append:
                result = self.store.append(
                    stream_id, stream_type, records, expected_version=loaded_at
                )
                append.appended(result)
            mark_saved(aggregate, len(pending))
            snapshot_error = None
            if snapshot or (
                self._type.snapshots is not None and self._type.snapshots.due(loaded_at, version)
            ):
                snapshot_error = self._snapshot_after_commit(aggregate)
            probe.appended(result)
        return SaveResult(result.stream_id, result.version, result.positions, snapshot_error)

    def _encode(
        self,
        pending: Iterable[PendingEvent],
        metadata: Metadata | None,
        traceparent: str | None,
        stream_id: str,
    ) -> list[NewEvent]:
        """Encode pending events, sealing personal fields with keys made for new subjects."""
        pending = list(pending)
        subjects = frozenset().union(*(self.serializer.personal_subjects(p.event) for p in pending))
        keys = self.keys.personal_data_keys(subjects, create=True) if subjects else None
        return [
            self.serializer.encode(
                p.event,
                event_id=p.event_id,
                metadata=_merged(p, metadata, traceparent),
                keys=keys,
                tags=p.tags,
                stream_id=stream_id,
            )
            for p in pending
        ]

    def save_all(
        self, aggregates: Iterable[A], *, metadata: Metadata | None = None
    ) -> list[SaveResult]:
        """Save several aggregates atomically: all their events commit, or none.

        One unit of work of the store (`store.transaction()`), which may also span other
        repositories' saves: open it yourself for that. Each aggregate keeps its own
        concurrency check; if one fails, nothing is written, and every aggregate should be
        loaded again before retrying.

        Returns:
            Where each aggregate's events landed, for those that had any.
        """
        results = []
        with self.store.transaction():
            for aggregate in aggregates:
                result = self.save(aggregate, metadata=metadata)
                if result is not None:
                    results.append(result)
        return results

    def take_snapshot(self, aggregate: A) -> None:
        """Store the aggregate's current state so later loads start from it.

        Raises:
            ValueError: The aggregate has unsaved events; save it first.
        """
        if pending_events(aggregate):
            msg = "save the aggregate before snapshotting it: it has unsaved events"
            raise ValueError(msg)
        subjects = self.serializer.personal_subjects(aggregate)
        keys = self.keys.personal_data_keys(subjects, create=True) if subjects else None
        self.store.save_snapshot(
            SnapshotRecord(
                stream_id=aggregate_id(aggregate),
                stream_type=self._type.stream_type,
                state_schema=self._type.state_schema,
                version=aggregate_version(aggregate),
                data=self.serializer.encode_state(aggregate, keys, nonce=uuid4()),
            )
        )

    def history(
        self, aggregate_id: str, *, include_archived: bool = False
    ) -> Iterator[Envelope[Any]]:
        """Yield every stored event of the aggregate, decoded, oldest first.

        Args:
            aggregate_id: The stream to read.
            include_archived: Also the events before the stream's truncation point
                (a closed stream's whole history), from the archive if they were moved.

        Raises:
            StreamTypeMismatchError: The stream is of another aggregate type.
        """
        validate_stream_id(aggregate_id)
        stream_type = self._type.stream_type
        keyring = Keyring(self.keys)
        for record in self.store.read_stream(aggregate_id, include_archived=include_archived):
            if record.stream_type != stream_type:
                raise StreamTypeMismatchError(aggregate_id, stream_type, record.stream_type)
            yield self.serializer.decode(record, keyring.for_data(record.data))

    def _from_snapshot(self, aggregate_id: str, at_version: int | None) -> tuple[A, int]:
        snapshot = self.store.load_snapshot(aggregate_id)
        if snapshot is not None and snapshot.stream_type != self._type.stream_type:
            # Not a cache miss: the id belongs to another aggregate type.
            raise StreamTypeMismatchError(
                aggregate_id, self._type.stream_type, snapshot.stream_type
            )
        usable = (
            snapshot is not None
            and snapshot.state_schema == self._type.state_schema
            and (at_version is None or snapshot.version <= at_version)
        )
        if snapshot is not None and usable:
            try:
                keys = Keyring(self.keys).for_data(snapshot.data)
                state = self.serializer.decode_state(self._class, snapshot.data, keys)
            except Exception:  # a snapshot is a cache: if it cannot be read, replay instead
                logger.warning(
                    "ignoring unreadable snapshot of %s at version %s",
                    aggregate_id,
                    snapshot.version,
                    exc_info=True,
                )
            else:
                return replayed(self._class, aggregate_id, snapshot.version, state), (
                    snapshot.version
                )
        return replayed(self._class, aggregate_id, 0), 0

    def _snapshot_after_commit(self, aggregate: A) -> Exception | None:
        # The events are committed; a failed snapshot must not make the save look failed (a
        # caller retrying the command would apply it twice).
        try:
            self.take_snapshot(aggregate)
        except Exception as error:  # reported on the result, not raised
            logger.warning(
                "could not snapshot %s at version %s; loads replay more events until the "
                "next snapshot",
                aggregate_id(aggregate),
                aggregate_version(aggregate),
                exc_info=True,
            )
            return error
        return None


def _merged(pending: PendingEvent, metadata: Metadata | None, traceparent: str | None) -> Metadata:
    if metadata is None and traceparent is None:
        return pending.metadata
    own = pending.metadata
    given = metadata or NO_METADATA
    extra = {**given.extra, **own.extra}
    if traceparent is not None:
        # The trace context of the code that saved, unless the caller gave one of its own.
        extra.setdefault(TRACEPARENT, traceparent)
    return Metadata(
        correlation_id=own.correlation_id or given.correlation_id,
        causation_id=own.causation_id or given.causation_id,
        extra=extra,
    )
