"""The lock that makes the store calls of one open unit of work take turns on its connection.

Tasks started inside an async unit of work (`asyncio.gather`, a `TaskGroup`) inherit the
context that names it, so their store calls share its one connection. Each call holds the
unit's lock for its whole use of that connection (its statements and the savepoint around
an append, or a read and the unit's bookkeeping of what the read returned), so calls of
concurrent tasks never interleave inside one another. The task holding it may take it
again: a store call made by another store call (a read of the unit's own events within
`read_query`) goes on.

`AsyncUnitLock` is the async stores' lock and `UnitLock` its sync twin, which
`tools/async_to_sync.py` names in the generated sync stores: there a unit belongs to the
thread that opened it (the threads it starts do not inherit the context), and its lock is a
re-entrant threading lock, so threads given the unit's context take turns too.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

__all__ = ["AsyncUnitLock", "UnitLock"]


class AsyncUnitLock:
    """An asyncio lock that the task holding it may take again (each time released once).

    Waiters get it in the order they asked for it.
    """

    __slots__ = ("_depth", "_lock", "_owner")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._depth = 0

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            self._depth += 1
            return
        await self._lock.acquire()
        self._owner = task
        self._depth = 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


class UnitLock:
    """The sync twin of `AsyncUnitLock`: a re-entrant lock of threads."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()
