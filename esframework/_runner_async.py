"""Runs a set of subscriptions in one asyncio application, one task each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Generic, TypeVar

from esframework._personal._keys_async import AsyncKeyStore
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._stopping_async import Stopper
from esframework._subscription_spec_async import AsyncSubscription, check_unique_names
from esframework._subscription_store_async import (
    AsyncRunnerCoordination,
    AsyncSharesCoordination,
    AsyncSubscriptionStore,
)
from esframework._subscription_worker_async import AsyncSubscriptionWorker

__all__ = ["AsyncRunner"]

logger = logging.getLogger("esframework.subscriptions")

C = TypeVar("C")


class AsyncRunner(Generic[C]):
    """Runs subscriptions as tasks until stopped, by `stop()`, SIGTERM or SIGINT.

    If one subscription fails for good, the runner stops the others and raises its error.
    Cancelling `run()` cancels the workers; a cancelled batch rolls back with its checkpoint.

    Args:
        store: The store every subscription reads from.
        subscriptions: What to run; names must be unique.
        serializer: Decodes events; the default uses the registered upcasters.
        report_every: Seconds between each subscription's progress lines in the log.
        keys: Where the keys of data subjects live, if not in `store` (see `personal`).
    """

    def __init__(
        self,
        store: AsyncSubscriptionStore[C],
        subscriptions: Sequence[AsyncSubscription[C]],
        *,
        serializer: Serializer = DEFAULT_SERIALIZER,
        report_every: float = 10.0,
        keys: AsyncKeyStore | None = None,
    ) -> None:
        check_unique_names(subscriptions)
        self.stopper = Stopper()
        # On PostgreSQL, one lease session and one listener for all the workers, not two
        # connections each: see "Connections" in the subscriptions concepts page.
        self._coordination: AsyncRunnerCoordination | None = (
            store.runner_coordination() if isinstance(store, AsyncSharesCoordination) else None
        )
        self.workers = {
            s.name: AsyncSubscriptionWorker(
                store,
                s,
                serializer=serializer,
                stopper=self.stopper,
                report_every=report_every,
                coordination=self._coordination,
                keys=keys,
            )
            for s in subscriptions
        }

    async def run(self, *, handle_signals: bool = True) -> None:
        """Run every subscription until stopped; raise the first one's failure, if any.

        A runner can run again after it stopped.
        """
        self.stopper.clear()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for number in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(number, self.stop)
        tasks = [
            asyncio.create_task(worker.run(), name=f"subscription {name}")
            for name, worker in self.workers.items()
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failures = [t.exception() for t in done if t.exception() is not None]
            if failures:
                self.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                failure = failures[0]
                assert failure is not None  # noqa: S101 -- filtered above
                raise failure
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._coordination is not None:
                await self._coordination.close()
            if handle_signals:
                for number in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(number)

    async def run_until_caught_up(self) -> None:
        """Deliver every stored event to every subscription, then return."""
        self.stopper.clear()
        try:
            for worker in self.workers.values():
                await worker.run(until_caught_up=True)
        finally:
            if self._coordination is not None:
                await self._coordination.close()

    def stop(self) -> None:
        """Ask every subscription to stop after the event in hand."""
        self.stopper.set()
