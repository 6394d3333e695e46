"""The SQLite store's subscription tables (checkpoints, dead letters) and polling for appends."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Final, Protocol, Self
from uuid import UUID

from esframework._records import ParkedEvent, StoredEvent

__all__ = ["PollingListener", "SQLiteSubscriptions"]


class _Store(Protocol):
    def head(self) -> int: ...

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _errors(self, action: str, what: str) -> AbstractContextManager[None]: ...


class SQLiteSubscriptions:
    """`load_checkpoint` and the parked events of the SQLite store (its documented
    `save_checkpoint` and `listener` are the store's own)."""

    def load_checkpoint(self: _Store, subscription: str) -> int | None:
        with self._reading() as db, self._errors("read the checkpoint of", subscription):
            row = db.execute(
                "SELECT last_position FROM subscription_checkpoints WHERE subscription_id = ?",
                (subscription,),
            ).fetchone()
        return None if row is None else int(row[0])

    def park(
        self: _Store,
        connection: sqlite3.Connection,
        subscription: str,
        event: StoredEvent,
        error: str,
    ) -> None:
        with self._errors("park an event of", subscription):
            connection.execute(
                "INSERT OR REPLACE INTO subscription_dead_letters (subscription_id, "
                "global_position, event_id, stream_id, event_type, error, parked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription,
                    event.position,
                    str(event.event_id),
                    event.stream_id,
                    event.event_type,
                    error,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def unpark(
        self: _Store, connection: sqlite3.Connection, subscription: str, position: int | None
    ) -> int:
        cursor = connection.execute(
            "DELETE FROM subscription_dead_letters WHERE subscription_id = ? "
            "AND (? IS NULL OR global_position = ?)",
            (subscription, position, position),
        )
        return cursor.rowcount

    def parked_streams(
        self: _Store, connection: sqlite3.Connection, subscription: str, stream_ids: Collection[str]
    ) -> frozenset[str]:
        if not stream_ids:
            return frozenset()
        marks = ", ".join("?" * len(stream_ids))  # a page's streams: far below SQLite's limit
        with self._errors("list the streams with parked events of", subscription):
            cursor = connection.execute(
                "SELECT DISTINCT stream_id FROM subscription_dead_letters "
                f"WHERE subscription_id = ? AND stream_id IN ({marks})",
                (subscription, *stream_ids),
            )
            return frozenset(row[0] for row in cursor)

    def parked(self: _Store, subscription: str) -> list[ParkedEvent]:
        with self._reading() as db, self._errors("list the parked events of", subscription):
            rows = db.execute(
                "SELECT global_position, event_id, stream_id, event_type, error, parked_at "
                "FROM subscription_dead_letters WHERE subscription_id = ? "
                "ORDER BY global_position",
                (subscription,),
            )
            return [
                ParkedEvent(
                    subscription=subscription,
                    position=row[0],
                    event_id=UUID(row[1]),
                    stream_id=row[2],
                    event_type=row[3],
                    error=row[4],
                    parked_at=datetime.fromisoformat(row[5]),
                )
                for row in rows
            ]


class PollingListener:
    """Waits by watching the head position: SQLite cannot push notifications."""

    INTERVAL: Final = 0.05

    def __init__(self, store: _Store) -> None:
        self._store = store

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def wait(self, timeout: float) -> None:
        start = self._store.head()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(self.INTERVAL)
            if self._store.head() != start:
                return
