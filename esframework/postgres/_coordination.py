# WARNING: generated from _coordination_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""Subscription leases and append notifications on PostgreSQL."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

from esframework.postgres._errors import translate
from esframework.postgres._sql import (
    NOTIFY_CHANNEL,
    application_name,
    lease_key,
    set_lock_timeout,
)

__all__ = ["PostgresLease", "PostgresListener"]


class PostgresLease:
    """A session advisory lock, held on a connection of its own for as long as it is held.

    When the holder dies, its connection drops and PostgreSQL releases the lock, so a standby
    takes over at its next try. Checkpoint writes check the lock is still held by this
    session (see `Statements.save_checkpoint`), which fences off a holder that lost it.
    """

    def __init__(
        self, conninfo: str, schema: str, subscription: str, *, lock_timeout: float | None = None
    ) -> None:
        self._conninfo = conninfo
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._name = application_name(schema)
        self.subscription = subscription
        self.key = lease_key(schema, subscription)
        self._connection: psycopg.Connection[Any] | None = None
        self.pid: int | None = None

    def acquire(self) -> bool:
        """Try once to take the lease; return whether this session holds it."""
        if self.pid is not None:
            return True
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.Connection.connect(
                    self._conninfo, autocommit=True, application_name=self._name
                )
                self._connection.execute(*self._set_lock_timeout)
            cursor = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s::bigint)", (self.key,)
            )
            row = cursor.fetchone()
        except psycopg.Error as error:
            self.release()
            raise translate(error, f"take the lease of {self.subscription!r}") from error
        if row is not None and row[0]:
            self.pid = self._connection.info.backend_pid
            return True
        return False

    def release(self) -> None:
        """Give the lease up (closing its connection releases the lock)."""
        self.pid = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


class PostgresListener:
    """A connection that LISTENs for append notifications."""

    def __init__(self, conninfo: str, schema: str, *, lock_timeout: float | None = None) -> None:
        self._conninfo = conninfo
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._schema = schema
        self._connection: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Self:
        try:
            self._connection = psycopg.Connection.connect(
                self._conninfo, autocommit=True, application_name=application_name(self._schema)
            )
            self._connection.execute(*self._set_lock_timeout)
            self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            self._connection.close()

    def wait(self, timeout: float) -> None:
        """Return at the next append to this schema, or after `timeout` seconds."""
        assert self._connection is not None  # noqa: S101 -- entered as a context manager
        try:
            for notice in self._connection.notifies(timeout=timeout):
                if notice.payload == self._schema:
                    return
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
