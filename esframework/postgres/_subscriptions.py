# WARNING: generated from _subscriptions_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The PostgreSQL store's subscription tables: checkpoints and parked events."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg

from esframework._records import (
    ParkedEvent,
    StoredEvent,
)
from esframework._subscription_store import Lease
from esframework.errors import (
    LeaseLostError,
)
from esframework.postgres._connections import Params, Statement
from esframework.postgres._coordination import PostgresLease
from esframework.postgres._sql import (
    Statements,
    lease_key_halves,
)

__all__ = ["PostgresSubscriptions"]


class _Store(Protocol):
    """What these methods use of the store they are mixed into."""

    _statements: Statements

    def _turn_on(self, connection: psycopg.Connection[Any]) -> AbstractContextManager[object]: ...

    def _fetch(self, doing: str, query: Statement, params: Params) -> list[Any]: ...


class PostgresSubscriptions:
    """The checkpoints and parked events of the PostgreSQL store."""

    def load_checkpoint(self: _Store, subscription: str) -> int | None:
        rows = self._fetch(
            f"read the checkpoint of {subscription!r}",
            self._statements.load_checkpoint,
            (subscription,),
        )
        return int(rows[0][0]) if rows else None

    def save_checkpoint(
        self: _Store,
        connection: psycopg.Connection[Any],
        subscription: str,
        position: int,
        lease: Lease,
        *,
        previous: int | None,
    ) -> None:
        held = lease if isinstance(lease, PostgresLease) else None
        key_high, key_low = lease_key_halves(held.key) if held is not None else (0, 0)
        with self._turn_on(connection):
            cursor = connection.execute(
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

    def park(
        self: _Store,
        connection: psycopg.Connection[Any],
        subscription: str,
        event: StoredEvent,
        error: str,
    ) -> None:
        with self._turn_on(connection):
            connection.execute(
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

    def unpark(
        self: _Store,
        connection: psycopg.Connection[Any],
        subscription: str,
        position: int | None,
    ) -> int:
        with self._turn_on(connection):
            cursor = connection.execute(
                self._statements.unpark, {"name": subscription, "position": position}
            )
        return cursor.rowcount

    def parked_streams(
        self: _Store,
        connection: psycopg.Connection[Any],
        subscription: str,
        stream_ids: Collection[str],
    ) -> frozenset[str]:
        if not stream_ids:
            return frozenset()
        with self._turn_on(connection):
            cursor = connection.execute(
                self._statements.parked_streams, (subscription, list(stream_ids))
            )
            return frozenset(row[0] for row in cursor.fetchall())

    def parked(self: _Store, subscription: str) -> list[ParkedEvent]:
        rows = self._fetch(
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
