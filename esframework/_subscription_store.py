# WARNING: generated from _subscription_store_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The contract a store keeps to run subscriptions: checkpoints, leases, notifications."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar, runtime_checkable

from esframework._records import ParkedEvent, StoredEvent
from esframework._store import EventStore

__all__ = [
    "Coordination",
    "Lease",
    "Listener",
    "RunnerCoordination",
    "SharesCoordination",
    "SubscriptionStore",
]

C = TypeVar("C")


class Lease(Protocol):
    """The right to be a subscription's one active instance."""

    renew_every: float
    """The longest the worker goes between renewals, idle or busy (infinite: never)."""

    def acquire(self) -> bool:
        """Try once to take the lease; return whether this instance now holds it."""
        ...

    def renew(self) -> None:
        """Show the holder still makes progress, if `renew_every` seconds have passed.

        The worker calls it between events and while idle, never from a thread of its own:
        a holder that stops making progress stops renewing, and loses the lease.

        Raises:
            LeaseLostError: The lease expired or its connection dropped.
        """
        ...

    def release(self) -> None: ...


class Listener(Protocol):
    """Wakes a caught-up worker when events may have been appended."""

    def wait(self, timeout: float) -> None:
        """Return when new events may exist, or after `timeout` seconds."""
        ...


class Coordination(Protocol):
    """Where workers take leases and listen for appends: a store, or a runner's shared one."""

    def lease(self, subscription: str) -> Lease: ...

    def listener(self) -> AbstractContextManager[Listener]: ...


@runtime_checkable
class SharesCoordination(Protocol):
    """A store whose runners share one lease session and one listener among their workers."""

    def runner_coordination(self) -> RunnerCoordination: ...


class RunnerCoordination(Coordination, Protocol):
    """The coordination one runner's workers share, closed when the runner stops."""

    def close(self) -> None: ...


class SubscriptionStore(EventStore, Protocol[C]):
    """An event store that can also run subscriptions: checkpoints, leases, notifications.

    `C` is the type of the native connection handlers receive.
    """

    def lease(self, subscription: str) -> Lease: ...

    def listener(self) -> AbstractContextManager[Listener]: ...

    def transaction(self) -> AbstractContextManager[C]: ...

    def load_checkpoint(self, subscription: str) -> int | None: ...

    def save_checkpoint(
        self,
        connection: C,
        subscription: str,
        position: int,
        lease: Lease,
        *,
        previous: int | None,
    ) -> None:
        """Move the checkpoint, in the handler's transaction, from `previous` to `position`.

        A compare-and-set: it fails if the stored checkpoint is not `previous` (None: no
        checkpoint yet), as when another instance moved it meanwhile.

        Raises:
            LeaseLostError: The checkpoint moved elsewhere, or `lease` is no longer held; the
                transaction must roll back.
        """
        ...

    def park(self, connection: C, subscription: str, event: StoredEvent, error: str) -> None: ...

    def unpark(self, connection: C, subscription: str, position: int | None) -> int:
        """Take a parked event (None: all of them) off the list; return how many were."""
        ...

    def parked(self, subscription: str) -> list[ParkedEvent]: ...

    def parked_streams(
        self, connection: C, subscription: str, stream_ids: Collection[str]
    ) -> frozenset[str]:
        """Return which of `stream_ids` have parked events, read in the handler's transaction.

        The entries read stay locked until the transaction ends (on SQLite, where one
        transaction writes at a time, they are anyway): a retry taking one off the list
        meanwhile is waited for, so an event is never parked behind one just delivered.
        """
        ...
