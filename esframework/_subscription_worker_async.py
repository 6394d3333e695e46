"""The subscription worker: delivers one subscription's events, in global order, to its handler.

This module is the source of `_subscription_worker.py`, which `tools/async_to_sync.py`
generates from it.

The worker takes the subscription's lease (one active instance), reads events after its
checkpoint in pages, and hands each page to the handler inside one transaction of the store's
database that also moves the checkpoint; failing events are retried, then parked or fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from esframework import _instrumentation
from esframework._handler_failures import HandlerFailedError, delivery_failure
from esframework._partitions_async import check_partition_count
from esframework._personal._keyring_async import AsyncKeyring
from esframework._personal._keys_async import AsyncKeyStore
from esframework._personal._redaction import redact_personal_data
from esframework._personal._sealing import Keys
from esframework._progress import Progress, ProgressTracker
from esframework._queries import Query
from esframework._records import ParkedEvent, StoredEvent
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._stopping_async import Stopper
from esframework._subscription_spec_async import AsyncProjection, AsyncSubscription
from esframework._subscription_store_async import AsyncCoordination, AsyncSubscriptionStore
from esframework.errors import (
    LeaseLostError,
    StoreUnavailableError,
    SubscriptionError,
    UnmappedEventTypesError,
)

__all__ = ["AsyncSubscriptionWorker"]

logger = logging.getLogger("esframework.subscriptions")

C = TypeVar("C")


class AsyncSubscriptionWorker(Generic[C]):
    """Runs one subscription against a store.

    Args:
        store: The store to read from, keep the checkpoint in, and lend connections from.
        subscription: What to deliver to whom.
        serializer: Decodes events; the default uses the registered upcasters.
        stopper: Set it to ask the worker to stop after the event in hand.
        report_every: Seconds between progress lines in the log.
        coordination: Where to take the lease and listen for appends, if not from `store`:
            a runner passes the session and listener all its workers share.
        keys: Where the keys of data subjects live, if not in `store` (see `personal`).
    """

    def __init__(
        self,
        store: AsyncSubscriptionStore[C],
        subscription: AsyncSubscription[C],
        *,
        serializer: Serializer = DEFAULT_SERIALIZER,
        stopper: Stopper | None = None,
        report_every: float = 10.0,
        coordination: AsyncCoordination | None = None,
        keys: AsyncKeyStore | None = None,
    ) -> None:
        self.store = store
        self.keys: AsyncKeyStore = store if keys is None else keys
        # A runner passes the leases and listener its workers share; alone, the store's own.
        self._coordination: AsyncCoordination = store if coordination is None else coordination
        self.subscription = subscription
        self.serializer = serializer
        self.stopper = stopper or Stopper()
        self._tracker = ProgressTracker(subscription.name)
        self._report_every = report_every
        self._reported = time.monotonic()
        self._event_types = (
            None
            if subscription.event_types is None
            else serializer.stored_type_names(subscription.event_types)
        )
        self._lease = self._coordination.lease(subscription.name)
        # Decided once: a runtime protocol check costs microseconds, on every event.
        handler = subscription.handler
        self._deliver = handler.handle if isinstance(handler, AsyncProjection) else handler
        self._owns = None if subscription.partition is None else subscription.partition.owns
        self._saved: int | None = None  # the checkpoint as stored: the next write expects it
        self._retry_delay = _FIRST_RETRY
        self._head_read_at = 0.0
        self._types_checked_at: float | None = None
        self._skip_saved_at = time.monotonic()
        # Streams with parked events, as far as this worker knows: only the lease holder
        # parks, so the set is never short of one; a retry elsewhere may have resolved one
        # (each hit is checked against the store, in the batch's transaction).
        self._held_streams: set[str] = set()

    @property
    def progress(self) -> Progress:
        """Where the worker is now: a new value on every access, never changed after."""
        return self._tracker.report()

    async def run(self, *, until_caught_up: bool = False) -> None:
        """Deliver events until stopped (or, with `until_caught_up`, until none are left).

        A lost connection is retried with backoff, resuming from the checkpoint; a lost lease
        sends the worker back to waiting for it. With `until_caught_up`, the worker returns at
        once if another instance holds the lease: that instance delivers the events.

        Raises:
            SubscriptionError: A handler kept failing on an event and `dead_letter` is off.
            StoreError: The store failed for good (a missing table, a refused permission).
        """
        while not self.stopper.is_set():
            try:
                acquired = await self._acquire_lease(wait=not until_caught_up)
                try:
                    if not acquired:
                        return
                    await self._deliver_until_stopped(until_caught_up=until_caught_up)
                finally:
                    await self._release_lease(held=acquired)
            except (LeaseLostError, StoreUnavailableError) as error:
                if isinstance(error, LeaseLostError):
                    _instrumentation.active.lease(self.subscription.name, "lost")
                if until_caught_up and isinstance(error, StoreUnavailableError):
                    raise
                logger.warning(
                    "subscription %s: %s; resuming from its checkpoint in %.1fs",
                    self.subscription.name,
                    error,
                    self._retry_delay,
                )
                await self.stopper.sleep(self._retry_delay)
                self._retry_delay = min(self._retry_delay * 2, _LAST_RETRY)
                continue
            return

    async def rebuild(self, *, on_progress: Callable[[Progress], None] | None = None) -> None:
        """Reset a projection's read model and checkpoint, then replay every event into it.

        Waits for the subscription's lease: stop the running instances first. Parked events
        are dropped: the replay delivers them again. `on_progress` gets a `Progress` after
        each page, counted from the rebuild's start, and a last one with `caught_up` set
        once nothing is left to replay (none if the worker is stopped before then).

        Raises:
            TypeError: The handler is a function, not a projection with `reset`.
            LeaseLostError: The worker was stopped before it got the lease.
        """
        handler = self.subscription.handler
        if not isinstance(handler, AsyncProjection):
            msg = f"subscription {self.subscription.name!r} has no projection to reset"
            raise TypeError(msg)
        if self.subscription.partition is not None:  # the read model is all partitions'
            msg = f"rebuild partition {self.subscription.name!r} with rebuild_partitions"
            raise TypeError(msg)
        acquired = await self._acquire_lease(wait=True)
        try:
            if not acquired:
                raise LeaseLostError(self.subscription.name, "stopped before it got the lease")
            await self._check_event_types()
            await check_partition_count(self.store, self.subscription)
            previous = await self.store.load_checkpoint(self.subscription.name)
            async with self.store.transaction() as connection:
                # Parked events first: a retry applying one holds its entry until it commits,
                # and is waited for here, so the reset that follows empties its write too.
                await self.store.unpark(connection, self.subscription.name, None)
                await handler.reset(connection)
                await self.store.save_checkpoint(
                    connection, self.subscription.name, 0, self._lease, previous=previous
                )
            logger.info("subscription %s: reset; replaying", self.subscription.name)
            self._saved = 0
            self._tracker.restart(0)
            self._held_streams = set()
            while not self.stopper.is_set() and (page := await self._next_page()):
                await self._deliver_page(page)
                if on_progress is not None:
                    on_progress(self._tracker.report())
            await self._save_skipped(force=True)
            if on_progress is not None and self._tracker.caught_up:
                on_progress(self._tracker.report())
        finally:
            await self._release_lease(held=acquired)

    async def retry_parked(self) -> list[ParkedEvent]:
        """Deliver the parked events again, oldest first; return those still parked.

        Each is taken off the list in the transaction that handles it, so two retries at once
        cannot both apply it, and a failure leaves it parked. With `on_poison="park_stream"`,
        an event that fails again keeps the later parked events of its stream parked behind
        it (they are returned too, not tried), and the events the running worker parks
        behind those delivered meanwhile are delivered as well.
        """
        return await self._retry(lambda _: True)

    async def drop_parked(self, position: int) -> list[ParkedEvent]:
        """Take the parked event at `position` off the list without delivering it.

        Its handler never sees it. With `on_poison="park_stream"`, the events of its stream
        parked behind it are then delivered, in order, as `retry_parked` would; return those
        still parked.

        Raises:
            ValueError: No event is parked at `position`.
        """
        name = self.subscription.name
        entry = next((p for p in await self.store.parked(name) if p.position == position), None)
        dropped = 0
        if entry is not None:
            async with self.store.transaction() as connection:
                dropped = await self.store.unpark(connection, name, position)
        if not dropped:
            msg = f"subscription {name!r} has no event parked at position {position}"
            raise ValueError(msg)
        assert entry is not None  # noqa: S101 -- it was found and dropped
        logger.warning("subscription %s: dropped the event parked at %s", name, position)
        if self.subscription.on_poison == "skip":
            return []
        return await self._retry(lambda p: p.stream_id == entry.stream_id)

    async def _retry(self, wanted: Callable[[ParkedEvent], bool]) -> list[ParkedEvent]:
        in_order = self.subscription.on_poison == "park_stream"
        still: dict[int, ParkedEvent] = {}
        stuck: set[str] = set()  # streams whose oldest parked event failed again
        tried: set[int] = set()
        delivered = True
        while delivered:  # a round's deliveries may let the worker park more behind them
            delivered = False
            for parked in await self.store.parked(self.subscription.name):
                if parked.position in tried or not wanted(parked):
                    continue
                tried.add(parked.position)
                if in_order and parked.stream_id in stuck:
                    still[parked.position] = parked
                    continue
                if await self._retry_one(parked):
                    delivered = True
                else:
                    still[parked.position] = parked
                    stuck.add(parked.stream_id)
            delivered = delivered and in_order
        return [still[position] for position in sorted(still)]

    async def _retry_one(self, parked: ParkedEvent) -> bool:
        (record,) = await self.store.read_all(after=parked.position - 1, limit=1)
        try:
            async with self.store.transaction() as connection:
                if await self.store.unpark(connection, self.subscription.name, record.position):
                    await self._handle(record, connection)
        except HandlerFailedError as failure:
            logger.warning(
                "subscription %s: parked event at position %s failed again: %r",
                self.subscription.name,
                parked.position,
                failure.error,
            )
            return False
        return True

    async def _acquire_lease(self, *, wait: bool) -> bool:
        while not await self._lease.acquire():
            if not wait or await self.stopper.sleep(self.subscription.lease_interval):
                return False
        _instrumentation.active.lease(self.subscription.name, "acquired")
        return True

    async def _release_lease(self, *, held: bool) -> None:
        await self._lease.release()
        if held:
            _instrumentation.active.lease(self.subscription.name, "released")

    async def _deliver_until_stopped(self, *, until_caught_up: bool) -> None:
        await self._check_event_types()
        await check_partition_count(self.store, self.subscription)
        self._tracker.position = await self._start_position()
        if self.subscription.on_poison == "park_stream":
            parked = await self.store.parked(self.subscription.name)
            self._held_streams = {p.stream_id for p in parked}
        async with self._coordination.listener() as listener:
            while not self.stopper.is_set():
                page = await self._next_page()
                if page:
                    await self._deliver_page(page)
                    continue
                if until_caught_up:
                    break
                await self._lease.renew()
                await listener.wait(min(self.subscription.poll_interval, self._lease.renew_every))
        await self._save_skipped(force=True)  # stopping cleanly: nothing to skip again

    async def _start_position(self) -> int:
        self._saved = await self.store.load_checkpoint(self.subscription.name)
        if self._saved is None:  # a new subscription: record where it starts
            start = 0 if self.subscription.start == "beginning" else await self.store.head()
            await self._move_checkpoint(start)
            return start
        return self._saved

    async def _move_checkpoint(self, position: int) -> None:
        async with self.store.transaction() as connection:
            await self._save_checkpoint(connection, position)
        self._saved = position

    async def _save_checkpoint(self, connection: C, position: int) -> None:
        await self.store.save_checkpoint(
            connection, self.subscription.name, position, self._lease, previous=self._saved
        )

    async def _next_page(self) -> list[StoredEvent]:
        """Read the next page; when a filter leaves nothing, skip ahead to the head.

        The head is read first: the store hands out positions in commit order, so nothing can
        later appear at or below a head that was read before the page was. Without a filter it
        only feeds the lag figure, so it is read at most once a second.
        """
        if self.subscription.query is not None:
            return await self._next_query_page(self.subscription.query)
        filtered = self.subscription.stream_types is not None or self._event_types is not None
        if (
            self._types_checked_at is not None
            and time.monotonic() - self._types_checked_at >= _TYPES_EVERY
        ):
            await self._check_event_types()
        head = self._tracker.head
        if filtered or time.monotonic() - self._head_read_at >= _HEAD_EVERY:
            head = self._tracker.head = max(await self.store.head(), self._tracker.head)
            self._head_read_at = time.monotonic()
        after, limit = self._tracker.position, self.subscription.batch_size
        with _instrumentation.active.read_all(self.subscription.name, after, limit) as read:
            page = await self.store.read_all(
                after=after,
                limit=limit,
                stream_types=self.subscription.stream_types,
                event_types=self._event_types,
            )
            read.read(len(page))
        if page:
            self._tracker.head = max(self._tracker.head, page[-1].position)
            self._tracker.caught_up = False
            return page
        if filtered:
            self._tracker.position = max(self._tracker.position, head)
            await self._save_skipped(force=False)
        self._tracker.reached_end()
        return page

    async def _next_query_page(self, query: Query) -> list[StoredEvent]:
        """Read the next page of the events `query` matches (and the other filters pass).

        The read's head says how far it saw the store: with nothing left to deliver, the
        position skips ahead to it, as with the other filters.
        """
        stream_types, event_types = self.subscription.stream_types, self._event_types
        while True:
            after, limit = self._tracker.position, self.subscription.batch_size
            with _instrumentation.active.read_all(self.subscription.name, after, limit) as read:
                found = await self.store.read_query(query, after=after, limit=limit)
                read.read(len(found.events))
            self._tracker.head = max(self._tracker.head, found.head)
            page = [
                e
                for e in found.events
                if (stream_types is None or e.stream_type in stream_types)
                and (event_types is None or e.event_type in event_types)
            ]
            if page:
                self._tracker.caught_up = False
                return page
            if not found.events or found.head <= self._tracker.position:
                break
            self._tracker.position = found.head  # a page the other filters left out
        self._tracker.position = max(self._tracker.position, found.head)
        await self._save_skipped(force=False)
        self._tracker.reached_end()
        return page

    async def _save_skipped(self, *, force: bool) -> None:
        """Save the position the filters skipped ahead to, if it is due (or `force`).

        Not on every skip: with filters, almost every unrelated append would cost each
        subscription a checkpoint transaction. Left unsaved, a restart only skips the same
        unrelated events again.
        """
        position, saved = self._tracker.position, self._saved or 0
        if self._saved is not None and position <= saved:
            return
        now = time.monotonic()
        if (
            force
            or position - saved >= self.subscription.skip_checkpoint_positions
            or now - self._skip_saved_at >= self.subscription.skip_checkpoint_interval
        ):
            await self._move_checkpoint(position)
            self._skip_saved_at = now

    async def _check_event_types(self) -> None:
        """Raise `UnmappedEventTypesError` if a class filter would pass over unreadable types.

        The filter asks the store for the classes' stored names only, so events of a class
        renamed without an upcaster would never be delivered, and the checkpoint would move
        past them. Asking the store for its distinct type names walks an index, once at start
        and then every `_TYPES_EVERY` seconds, instead of looking at every event.
        """
        if self._event_types is None:
            return
        self._types_checked_at = time.monotonic()
        ignored = self.subscription.ignored_event_types
        unmapped = sorted(
            name
            for name in await self.store.stored_event_types()
            if name not in self._event_types
            and name not in ignored
            and not self.serializer.maps_type_name(name)
        )
        if unmapped:
            raise UnmappedEventTypesError(self.subscription.name, tuple(unmapped))

    async def _deliver_page(self, page: Sequence[StoredEvent]) -> None:
        with _instrumentation.active.batch(self.subscription.name, page):
            # One keyring for the page, as for one load: a single query for the keys of
            # every subject it seals, where one per event cost a query each. A subject
            # forgotten from now on reads as forgotten from the next page.
            keys = await AsyncKeyring(self.keys).for_all(r.data for r in page)
            try:
                async with self.store.transaction() as connection:
                    # Read first, before the handler takes any lock of its own (see `_held`).
                    held = await self._held(connection, page)
                    for record in page:
                        if record.stream_id in held:
                            await self._park_behind(connection, record)
                        else:
                            await self._handle(record, connection, keys)
                    await self._save_checkpoint(connection, page[-1].position)
            except HandlerFailedError:  # find which event failed: one transaction each
                logger.debug(
                    "subscription %s: batch failed; retrying event by event", exc_info=True
                )
                for record in page:
                    if self.stopper.is_set() or not await self._deliver_one(record):
                        return
            else:
                self._committed(page[-1], len(page))
                self._log_parked_behind([r for r in page if r.stream_id in held])

    async def _held(self, connection: C, records: Sequence[StoredEvent]) -> frozenset[str]:
        """Return the streams of `records` that have parked events, their later events to be
        parked behind them (with `on_poison="park_stream"`).

        Asked of the store only for streams this worker has parked events of, in the batch's
        transaction, which on PostgreSQL then waits for a retry resolving one of them.
        """
        candidates = {r.stream_id for r in records} & self._held_streams
        if not candidates:
            return frozenset()
        held = await self.store.parked_streams(connection, self.subscription.name, candidates)
        self._held_streams -= candidates - held  # resolved meanwhile: deliver them again
        return held

    async def _park_behind(self, connection: C, record: StoredEvent) -> None:
        await self.store.park(
            connection,
            self.subscription.name,
            record,
            f"parked behind an earlier parked event of stream {record.stream_id!r}",
        )

    def _log_parked_behind(self, records: Sequence[StoredEvent]) -> None:
        self._tracker.parked += len(records)
        for record in records:  # logged once committed: nothing was parked before that
            _instrumentation.active.parked(self.subscription.name, record)
            logger.warning(
                "subscription %s: parked event %r at position %s behind an earlier parked "
                "event of its stream %r",
                self.subscription.name,
                record.event_type,
                record.position,
                record.stream_id,
            )

    async def _deliver_one(self, record: StoredEvent) -> bool:
        """Deliver one event with retries; return False if asked to stop while retrying."""
        attempt = 1
        while True:
            try:
                async with self.store.transaction() as connection:
                    held = await self._held(connection, [record])
                    if held:
                        await self._park_behind(connection, record)
                    else:
                        await self._handle(record, connection)
                    await self._save_checkpoint(connection, record.position)
            except HandlerFailedError as failure:
                if attempt < self.subscription.max_attempts:
                    logger.warning(
                        "subscription %s: handler failed on position %s (attempt %s of %s): %r",
                        self.subscription.name,
                        record.position,
                        attempt,
                        self.subscription.max_attempts,
                        failure.error,
                    )
                    delay = self.subscription.retry_delay * 2 ** (attempt - 1)
                    if await self.stopper.sleep(delay):
                        return False  # the checkpoint stays before the event
                    attempt += 1
                    continue
                await self._give_up(record, attempt, failure.error, failure.keys)
            else:
                self._log_parked_behind([record] if held else [])
            self._committed(record, 1)
            return True

    async def _give_up(
        self, record: StoredEvent, attempts: int, error: Exception, seen: Keys | None
    ) -> None:
        if not self.subscription.dead_letter:
            raise SubscriptionError(
                self.subscription.name,
                event_type=record.event_type,
                stream_id=record.stream_id,
                position=record.position,
                attempts=attempts,
            ) from error
        # The text is kept with the parked event: it must not keep personal data past
        # forgetting, as the handler's message may quote the event. Redacted with the keys
        # the handler's event was decoded with: a subject forgotten since has no key now,
        # but the message may still hold what the handler read.
        keys = seen if seen is not None else await AsyncKeyring(self.keys).for_data(record.data)
        text = redact_personal_data(repr(error), record.data, keys)
        async with self.store.transaction() as connection:
            await self.store.park(connection, self.subscription.name, record, text)
            await self._save_checkpoint(connection, record.position)
        self._tracker.parked += 1
        if self.subscription.on_poison == "park_stream":
            self._held_streams.add(record.stream_id)
        logger.error(  # once committed: a failed park leaves the event unparked, to retry
            "subscription %s: handler failed %s times on event %r at position %s of stream "
            "%r; parked it%s",
            self.subscription.name,
            attempts,
            record.event_type,
            record.position,
            record.stream_id,
            ", and its stream's later events behind it until it is resolved"
            if self.subscription.on_poison == "park_stream"
            else "",
            exc_info=error,
        )
        _instrumentation.active.parked(self.subscription.name, record)

    async def _handle(self, record: StoredEvent, connection: C, keys: Keys | None = None) -> None:
        """Decode `record`, unsealed with `keys` (its page's) or a keyring of its own."""
        if self._owns is not None and not self._owns(record.stream_id):
            return  # another partition's: passed over undecoded, the checkpoint moves past it
        await self._lease.renew()  # outside the try: a lost lease is not the event's failure
        try:
            with _instrumentation.active.handle(self.subscription.name, record):
                if keys is None:
                    keys = await AsyncKeyring(self.keys).for_data(record.data)
                await self._deliver(self.serializer.decode(record, keys), connection)
        except Exception as error:
            delivery = delivery_failure(error)
            if delivery is error:  # the store failed the handler, not the event
                raise
            if isinstance(delivery, LeaseLostError):
                raise LeaseLostError(delivery.subscription, delivery.reason) from error
            if delivery is not None:  # raised as the handler's own error: unwrap it
                raise StoreUnavailableError(str(delivery)) from error
            raise HandlerFailedError(error, keys) from error

    def _committed(self, last: StoredEvent, handled: int) -> None:
        position = last.position
        self._saved = self._tracker.position = position
        _instrumentation.active.lag(
            self.subscription.name,
            max(self._tracker.head - position, 0),
            max(time.time() - last.recorded_at.timestamp(), 0.0),
        )
        self._retry_delay = _FIRST_RETRY
        self._tracker.handled += handled
        now = time.monotonic()
        if now - self._reported >= self._report_every:
            self._reported = now
            progress = self._tracker.report()
            logger.info(
                "subscription %s at position %s, lag %s, %.0f events/s",
                self.subscription.name,
                position,
                progress.lag,
                progress.rate,
            )


_FIRST_RETRY = 0.1
_LAST_RETRY = 30.0
_HEAD_EVERY = 1.0  # seconds between head reads that only serve the lag figure
_TYPES_EVERY = 60.0  # seconds between checks for stored types a class filter cannot read
