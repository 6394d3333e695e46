"""Truncating and archiving streams on PostgreSQL (migration 6): methods of the store.

This module is the source of `_archive.py`, which `tools/async_to_sync.py` generates from it.

Tombstones need nothing here: they are appends (see `AsyncEventStore.tombstone`), which the
insert check of migration 6 ends streams at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import psycopg

from esframework._checks import validate_stream_id
from esframework._retention import check_truncation
from esframework.postgres._sql import Statements

__all__ = ["AsyncArchiving"]

T = TypeVar("T")


class _Store(Protocol):
    """What these methods use of the store they are mixed into."""

    _statements: Statements

    async def _run(
        self, doing: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T: ...

    async def _fetch(
        self, doing: str, query: bytes, params: Any, *, returns_rows: bool = True
    ) -> list[Any]: ...

    async def _read_own_writes(self) -> None: ...


class AsyncArchiving:
    """`truncate_before`, `archive` and `archivable` of the PostgreSQL store."""

    async def truncate_before(self: _Store, stream_id: str, version: int) -> None:
        validate_stream_id(stream_id)

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            cursor = await conn.execute(self._statements.snapshot_version, (stream_id,))
            row = await cursor.fetchone()
            # A snapshot's version only grows: checked here, it still holds at the write.
            check_truncation(stream_id, version, None if row is None else int(row[0]))
            await conn.execute(self._statements.truncate, (stream_id, version))

        await self._run(f"truncate stream {stream_id!r}", work)

    async def archive(self: _Store, *, max_events: int = 5000) -> int:
        """Move up to `max_events` events of truncated or closed streams to the archive.

        One archiving pass (migration 6's function, with the owner's rights), in one
        transaction: the events leave `events` for `events_archive` with every column,
        position included, unchanged; global reads and reads with `include_archived` still
        return them. Only events below a positioned event of their stream move (what this
        store appended is positioned first). Call it until it returns 0 (`esframework
        archive` does).

        Returns:
            How many events were moved; 0 once nothing is left, -1 if another archiving
            pass is running (try again later).
        """
        if max_events < 1:
            msg = f"max_events must be 1 or more, not {max_events}"
            raise ValueError(msg)
        await self._read_own_writes()  # what this store appended is positioned first
        rows = await self._fetch("archive events", self._statements.archive, (max_events,))
        return int(rows[0][0])

    async def archivable(self: _Store) -> int:
        """Return how many events of truncated or closed streams wait to be archived."""
        rows = await self._fetch("count archivable events", self._statements.archivable, None)
        return int(rows[0][0])
