"""Where a subscription worker is: reports as values, and the counters they are taken from."""

from __future__ import annotations

import time

import attrs

__all__ = ["Progress", "ProgressTracker"]


@attrs.frozen
class Progress:
    """One report of where a worker was when it was made; it never changes afterwards.

    Keep reports as they come (`on_progress=reports.append`): each is a value of its own.
    The last report of a completed rebuild has `caught_up` set. Compare positions with
    `caught_up`, not with the store's head: a subscription that filters events ends at the
    head only because it skips ahead to it, and appends made meanwhile move the head on.

    Attributes:
        subscription: The subscription's name.
        position: The global position the worker has handled up to, past any events its
            filters skip; it starts at the stored checkpoint (0 for a new subscription that
            starts at the beginning, and for a rebuild).
        head: The highest global position the worker had seen in the store.
        handled: Events delivered and committed since the worker started (or the rebuild
            began), parked ones included; events a filter skips are not counted.
        parked: How many of those were parked after failing `max_attempts` times.
        elapsed: Seconds from the worker's start (or the rebuild's) to this report.
        caught_up: The worker read past `position` and found nothing to deliver: it had
            reached the end of the store (for now: live appends move the head on).
    """

    subscription: str
    position: int
    head: int
    handled: int
    parked: int
    elapsed: float
    caught_up: bool

    @property
    def lag(self) -> int:
        """Events stored but not yet handled, counted in positions: an upper bound when
        filtering, and across the gap in positions that a PostgreSQL server crash can
        leave."""
        return max(self.head - self.position, 0)

    @property
    def rate(self) -> float:
        """Events handled per second, from the worker's start to this report."""
        return self.handled / self.elapsed if self.elapsed > 0 else 0.0


@attrs.define
class ProgressTracker:
    """The worker's own counters, changed in place; `report()` takes a `Progress` of them."""

    subscription: str
    position: int = 0
    head: int = 0
    handled: int = 0
    parked: int = 0
    caught_up: bool = False
    started: float = attrs.field(factory=time.monotonic)

    def restart(self, position: int) -> None:
        """Count from zero again, from `position` (a rebuild)."""
        self.position = position
        self.handled = self.parked = 0
        self.caught_up = False
        self.started = time.monotonic()

    def reached_end(self) -> None:
        """Record that nothing is left after `position`; the head is at least there."""
        self.caught_up = True
        self.head = max(self.head, self.position)

    def report(self) -> Progress:
        return Progress(
            subscription=self.subscription,
            position=self.position,
            head=self.head,
            handled=self.handled,
            parked=self.parked,
            elapsed=time.monotonic() - self.started,
            caught_up=self.caught_up,
        )
