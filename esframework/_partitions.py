# WARNING: generated from _partitions_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""Partitioned subscriptions: one subscription run as N competing partitions."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from esframework._partition import (
    MAX_BASE_NAME_LENGTH,
    Partition,
    count_marker,
    partition_name,
)
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework.errors import PartitionCountError

if TYPE_CHECKING:
    from esframework._progress import Progress
    from esframework._subscription_spec import Subscription
    from esframework._subscription_store import Lease, SubscriptionStore

__all__ = ["check_partition_count", "partitioned", "rebuild_partitions"]

C = TypeVar("C")

_COUNT_LEASE_RETRY = 0.05  # seconds: the count's lease is held only while it is written


def partitioned(
    subscription: Subscription[C], count: int, *, indexes: Collection[int] | None = None
) -> list[Subscription[C]]:
    """Split `subscription` into `count` partitions; return those listed in `indexes` (all).

    Partition k is named `name:k/count`. Give a runner all of them, and run it in several
    processes: each partition is run by whichever process holds its lease, the others stand
    by. To spread the partitions over processes, give each process the `indexes` it should
    run (and, for failover, a standby process all of them). A count of 1 is `subscription`
    itself, unpartitioned.

    Raises:
        ValueError: The count or an index is out of range, the name leaves no room for the
            partition suffix, or the subscription is a partition already.
    """
    chosen = sorted(set(range(count) if indexes is None else indexes))
    if subscription.partition is not None:
        msg = f"subscription {subscription.name!r} is a partition already"
        raise ValueError(msg)
    if len(subscription.name) > MAX_BASE_NAME_LENGTH:
        msg = f"partitioned subscription names need at most {MAX_BASE_NAME_LENGTH} characters"
        raise ValueError(msg)
    Partition(subscription.name, 0, count)  # validates the count, even with no indexes
    parts = [Partition(subscription.name, index, count) for index in chosen]  # and the indexes
    if count == 1:
        return [subscription]
    return [
        attrs.evolve(
            subscription,
            name=partition_name(subscription.name, part.index, count),
            partition=part,
        )
        for part in parts
    ]


def check_partition_count(store: SubscriptionStore[Any], subscription: Subscription[Any]) -> None:
    """Refuse to run `subscription` if its checkpoints were made with another partition count.

    The first worker to start records the count, an unpartitioned one too (as 1), under
    the count's lease and before it writes a checkpoint: two first starts at once with
    different counts cannot both find nothing recorded and both run. A subscription that
    ran unpartitioned before counts were recorded (it has a checkpoint under its own name)
    counts as found at 1.

    Raises:
        PartitionCountError: The recorded count is not the configured one.
    """
    part = subscription.partition
    base = subscription.name if part is None else part.base
    configured = 1 if part is None else part.count
    if part is None and len(base) > MAX_BASE_NAME_LENGTH:
        return  # too long a name to have been partitioned
    marker = count_marker(base)
    recorded = store.load_checkpoint(marker)
    if recorded is None:
        if store.load_checkpoint(base) is not None:
            recorded = 1
        else:
            recorded = _record_count(store, marker, configured)
    if recorded != configured:
        raise PartitionCountError(base, found=recorded, configured=configured)


def _record_count(store: SubscriptionStore[Any], marker: str, count: int) -> int:
    """Record `count` unless another partition recorded one first; return the recorded one."""
    lease = store.lease(marker)
    _take(lease, _COUNT_LEASE_RETRY)
    try:
        recorded = store.load_checkpoint(marker)
        if recorded is None:
            with store.transaction() as connection:
                store.save_checkpoint(connection, marker, count, lease, previous=None)
            recorded = count
        return recorded
    finally:
        lease.release()


def rebuild_partitions(
    store: SubscriptionStore[C],
    subscriptions: Sequence[Subscription[C]],
    *,
    serializer: Serializer = DEFAULT_SERIALIZER,
) -> list[Progress]:
    """Rebuild a partitioned projection, or change its partition count: reset, then replay.

    `subscriptions` are all the partitions of the new layout, as `partitioned(s, count)`
    returns them. Waits for the leases of every partition, of the new layout and of the one
    recorded: stop the subscription's workers first. Then, in one transaction, resets the
    read model (once), drops every parked event, sets each new partition's checkpoint to 0
    and records the new count. Last, replays each partition whose lease no running worker
    took meanwhile (one after the other), and returns each replay's progress. Checkpoints
    of an old layout stay behind, unused.

    Raises:
        ValueError: `subscriptions` are not all the partitions of one subscription.
        TypeError: The handler is a function, not a projection with `reset`.
    """
    from esframework._subscription_spec import Projection
    from esframework._subscription_worker import SubscriptionWorker

    base, count, handler = _layout(subscriptions)
    if not isinstance(handler, Projection):
        msg = f"subscription {base!r} has no projection to reset"
        raise TypeError(msg)
    marker = count_marker(base)
    recorded = store.load_checkpoint(marker)
    if recorded is None:
        recorded_names = [base] if store.load_checkpoint(base) is not None else []
    else:
        recorded_names = _names(base, recorded)
    names = [s.name for s in subscriptions]
    wanted = [*names, *(n for n in recorded_names if n not in names)]
    leases: dict[str, Lease] = {}
    try:
        for name in [*wanted, marker]:
            leases[name] = store.lease(name)
            _take(leases[name], subscriptions[0].lease_interval)
        with store.transaction() as connection:
            # Parked events first: a retry applying one holds its entry until it commits,
            # and is waited for here, so the reset that follows empties its write too.
            for name in wanted:
                store.unpark(connection, name, None)
            handler.reset(connection)
            for name in names:
                previous = store.load_checkpoint(name)
                store.save_checkpoint(connection, name, 0, leases[name], previous=previous)
            store.save_checkpoint(connection, marker, count, leases[marker], previous=recorded)
    finally:
        for lease in leases.values():
            lease.release()
    progress = []
    for subscription in subscriptions:
        worker = SubscriptionWorker(store, subscription, serializer=serializer)
        worker.run(until_caught_up=True)
        progress.append(worker.progress)
    return progress


def _take(lease: Lease, interval: float) -> None:
    """Wait for `lease`, trying every `interval` seconds."""
    while True:
        if lease.acquire():
            return
        time.sleep(interval)


def _layout(subscriptions: Sequence[Subscription[C]]) -> tuple[str, int, object]:
    """The base name, count and handler of a complete set of partitions."""
    if not subscriptions:
        msg = "rebuild_partitions needs the subscription's partitions"
        raise ValueError(msg)
    first = subscriptions[0]
    if first.partition is None:
        if len(subscriptions) != 1:
            msg = f"subscription {first.name!r} is not partitioned: pass it alone"
            raise ValueError(msg)
        return first.name, 1, first.handler
    base, count = first.partition.base, first.partition.count
    indexes = sorted(s.partition.index for s in subscriptions if s.partition is not None)
    same = all(
        s.partition is not None
        and s.partition.base == base
        and s.partition.count == count
        and s.handler is first.handler
        for s in subscriptions
    )
    if not same or indexes != list(range(count)):
        msg = f"rebuild_partitions needs all {count} partitions of {base!r}, each once"
        raise ValueError(msg)
    return base, count, first.handler


def _names(base: str, count: int) -> list[str]:
    if count == 1:
        return [base]
    return [partition_name(base, index, count) for index in range(count)]
