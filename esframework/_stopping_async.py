"""A stop signal that interrupts sleeps, for asyncio code (twin of `_stopping.py`)."""

from __future__ import annotations

import asyncio

__all__ = ["Stopper"]


class Stopper:
    """Set once to ask a worker to stop; its sleeps end early when it is set."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; return True if woken because the stop was asked."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True
