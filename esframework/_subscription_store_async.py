"""The contract a store keeps to run subscriptions: checkpoints, leases, notifications.

This module is the source of `_subscription_store.py`, which `tools/async_to_sync.py`
generates from it.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar, runtime_checkable

from esframework._records import ParkedEvent, StoredEvent
from esframework._store_async import AsyncEventStore

__all__ = [
    "AsyncCoordination",
    "AsyncLease",
    "AsyncListener",
    "AsyncRunnerCoordination",
    "AsyncSharesCoordination",
    "AsyncSubscriptionStore",
]

C = TypeVar("C")


class AsyncLease(Protocol):
    """The right to be a subscription's one active instance."""

    renew_every: float
    """The longest the worker goes between renewals, idle or busy (infinite: never)."""

    async def acquire(self) -> bool:
        """Try once to take the lease; return whether this instance now holds it."""
        ...

    async def renew(self) -> None:
        """Show the holder still makes progress, if `renew_every` seconds have passed.

        The worker calls it between events and while idle, never from a thread of its own:
        a holder that stops making progress stops renewing, and loses the lease.

        Raises:
            LeaseLostError: The lease expired or its connection dropped.
        """
        ...

    async def release(self) -> None: ...


class AsyncListener(Protocol):
    """Wakes a caught-up worker when events may have been appended."""

    async def wait(self, timeout: float) -> None:
        """Return when new events may exist, or after `timeout` seconds."""
        ...


class AsyncCoordination(Protocol):
    """Where workers take leases and listen for appends: a store, or a runner's shared one."""

    def lease(self, subscription: str) -> AsyncLease: ...

    def listener(self) -> AbstractAsyncContextManager[AsyncListener]: ...


@runtime_checkable
class AsyncSharesCoordination(Protocol):
    """A store whose runners share one lease session and one listener among their workers."""

    def runner_coordination(self) -> AsyncRunnerCoordination: ...


class AsyncRunnerCoordination(AsyncCoordination, Protocol):
    """The coordination one runner's workers share, closed when the runner stops."""

    async def close(self) -> None: ...


class AsyncSubscriptionStore(AsyncEventStore, Protocol[C]):
    """An event store that can also run subscriptions: checkpoints, leases, notifications.

    `C` is the type of the native connection handlers receive.
    """

    def lease(self, subscription: str) -> AsyncLease: ...

    def listener(self) -> AbstractAsyncContextManager[AsyncListener]: ...

    def transaction(self) -> AbstractAsyncContextManager[C]: ...

    async def load_checkpoint(self, subscription: str) -> int | None: ...

    async def save_checkpoint(
        self,
        connection: C,
        subscription: str,
        position: int,
        lease: AsyncLease,
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

    async def park(
        self, connection: C, subscription: str, event: StoredEvent, error: str
    ) -> None: ...

    async def unpark(self, connection: C, subscription: str, position: int | None) -> int:
        """Take a parked event (None: all of them) off the list; return how many were."""
        ...

    async def parked(self, subscription: str) -> list[ParkedEvent]: ...

    async def parked_streams(
        self, connection: C, subscription: str, stream_ids: Collection[str]
    ) -> frozenset[str]:
        """Return which of `stream_ids` have parked events, read in the handler's transaction.

        The entries read stay locked until the transaction ends (on SQLite, where one
        transaction writes at a time, they are anyway): a retry taking one off the list
        meanwhile is waited for, so an event is never parked behind one just delivered.
        """
        ...
