"""The PostgreSQL store's subscription tables: checkpoints and parked events.

This module is the source of `_subscriptions.py`, which `tools/async_to_sync.py` generates
from it.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg

from esframework._records import (
    ParkedEvent,
    StoredEvent,
)
from esframework._subscription_store_async import AsyncLease
from esframework.errors import (
    LeaseLostError,
)
from esframework.postgres._connections_async import Params, Statement
from esframework.postgres._coordination_async import AsyncPostgresLease
from esframework.postgres._sql import (
    Statements,
    lease_key_halves,
)

__all__ = ["AsyncPostgresSubscriptions"]


class _Store(Protocol):
    """What these methods use of the store they are mixed into."""

    _statements: Statements

    def _turn_on(
        self, connection: psycopg.AsyncConnection[Any]
    ) -> AbstractAsyncContextManager[object]: ...

    async def _fetch(self, doing: str, query: Statement, params: Params) -> list[Any]: ...


class AsyncPostgresSubscriptions:
    """The checkpoints and parked events of the PostgreSQL store."""

    async def load_checkpoint(self: _Store, subscription: str) -> int | None:
        rows = await self._fetch(
            f"read the checkpoint of {subscription!r}",
            self._statements.load_checkpoint,
            (subscription,),
        )
        return int(rows[0][0]) if rows else None

    async def save_checkpoint(
        self: _Store,
        connection: psycopg.AsyncConnection[Any],
        subscription: str,
        position: int,
        lease: AsyncLease,
        *,
        previous: int | None,
    ) -> None:
        held = lease if isinstance(lease, AsyncPostgresLease) else None
        key_high, key_low = lease_key_halves(held.key) if held is not None else (0, 0)
        async with self._turn_on(connection):
            cursor = await connection.execute(
                self._statements.save_checkpoint,
                {
                    "name": subscription,
                    "position": position,
                    "pid": None if held is None else held.pid,
                    "key_high": key_high,
                    "key_low": key_low,
                    "previous": previous,
                },
            )
        if cursor.rowcount != 1:
            raise LeaseLostError(subscription)

    async def park(
        self: _Store,
        connection: psycopg.AsyncConnection[Any],
        subscription: str,
        event: StoredEvent,
        error: str,
    ) -> None:
        async with self._turn_on(connection):
            await connection.execute(
                self._statements.park,
                (
                    subscription,
                    event.position,
                    event.event_id,
                    event.stream_id,
                    event.event_type,
                    error,
                ),
            )

    async def unpark(
        self: _Store,
        connection: psycopg.AsyncConnection[Any],
        subscription: str,
        position: int | None,
    ) -> int:
        async with self._turn_on(connection):
            cursor = await connection.execute(
                self._statements.unpark, {"name": subscription, "position": position}
            )
        return cursor.rowcount

    async def parked_streams(
        self: _Store,
        connection: psycopg.AsyncConnection[Any],
        subscription: str,
        stream_ids: Collection[str],
    ) -> frozenset[str]:
        if not stream_ids:
            return frozenset()
        async with self._turn_on(connection):
            cursor = await connection.execute(
                self._statements.parked_streams, (subscription, list(stream_ids))
            )
            return frozenset(row[0] for row in await cursor.fetchall())

    async def parked(self: _Store, subscription: str) -> list[ParkedEvent]:
        rows = await self._fetch(
            f"list the parked events of {subscription!r}", self._statements.parked, (subscription,)
        )
        return [
            ParkedEvent(
                subscription=row[0],
                position=row[1],
                event_id=row[2],
                stream_id=row[3],
                event_type=row[4],
                error=row[5],
                parked_at=row[6],
            )
            for row in rows
        ]
