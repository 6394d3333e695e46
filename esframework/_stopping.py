"""A stop signal that interrupts sleeps, for threads (twin of `_stopping_async.py`)."""

from __future__ import annotations

import threading

__all__ = ["Stopper"]


class Stopper:
    """Set once to ask a worker to stop; its sleeps end early when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; return True if woken because the stop was asked."""
        return self._event.wait(seconds)
