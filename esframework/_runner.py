"""Runs a set of subscriptions as one long-lived worker process, one thread each."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Generic, TypeVar

from esframework._personal._keys import KeyStore
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._stopping import Stopper
from esframework._subscription_spec import Subscription, check_unique_names
from esframework._subscription_store import (
    RunnerCoordination,
    SharesCoordination,
    SubscriptionStore,
)
from esframework._subscription_worker import SubscriptionWorker

__all__ = ["Runner"]

logger = logging.getLogger("esframework.subscriptions")

C = TypeVar("C")


class Runner(Generic[C]):
    """Runs subscriptions until stopped, by `stop()`, SIGTERM or SIGINT.

    If one subscription fails for good, the runner stops the others and raises its error, so
    a supervisor (systemd, Kubernetes) restarts the process, which resumes from checkpoints.

    Args:
        store: The store every subscription reads from.
        subscriptions: What to run; names must be unique.
        serializer: Decodes events; the default uses the registered upcasters.
        report_every: Seconds between each subscription's progress lines in the log.
        keys: Where the keys of data subjects live, if not in `store` (see `personal`).
    """

    def __init__(
        self,
        store: SubscriptionStore[C],
        subscriptions: Sequence[Subscription[C]],
        *,
        serializer: Serializer = DEFAULT_SERIALIZER,
        report_every: float = 10.0,
        keys: KeyStore | None = None,
    ) -> None:
        check_unique_names(subscriptions)
        self.stopper = Stopper()
        # On PostgreSQL, one lease session and one listener for all the workers, not two
        # connections each: see "Connections" in the subscriptions concepts page.
        self._coordination: RunnerCoordination | None = (
            store.runner_coordination() if isinstance(store, SharesCoordination) else None
        )
        self.workers = {
            s.name: SubscriptionWorker(
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

    def run(self) -> None:
        """Run every subscription until stopped; raise the first one's failure, if any.

        A runner can run again after it stopped.
        """
        self.stopper.clear()
        failures: list[BaseException] = []

        def run(worker: SubscriptionWorker[C]) -> None:
            try:
                worker.run()
            except BaseException as error:
                logger.exception("subscription %s failed", worker.subscription.name)
                failures.append(error)
                self.stop()

        threads = [
            threading.Thread(target=run, args=(w,), name=f"subscription {n}", daemon=True)
            for n, w in self.workers.items()
        ]
        with _stop_on_signals(self.stop):
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    while thread.is_alive():  # join in slices, so signals are handled meanwhile
                        thread.join(0.2)
            finally:
                if self._coordination is not None:
                    self._coordination.close()
        if failures:
            raise failures[0]

    def run_until_caught_up(self) -> None:
        """Deliver every stored event to every subscription, then return."""
        self.stopper.clear()
        try:
            for worker in self.workers.values():
                worker.run(until_caught_up=True)
        finally:
            if self._coordination is not None:
                self._coordination.close()

    def stop(self) -> None:
        """Ask every subscription to stop after the event in hand."""
        self.stopper.set()


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` on SIGTERM and SIGINT while running in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(number: int, _: FrameType | None) -> None:
        logger.info("received %s: stopping after the events in hand", signal.Signals(number).name)
        stop()

    previous = {number: signal.signal(number, handle) for number in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
