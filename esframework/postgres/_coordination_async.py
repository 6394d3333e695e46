"""Subscription leases and append notifications on PostgreSQL.

This module is the source of `_coordination.py`, which `tools/async_to_sync.py` generates from it.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any, Final, Self

import psycopg
from psycopg import sql

from esframework.errors import LeaseLostError
from esframework.postgres._connection_setup import (
    DEFAULT_LEASE_TIMEOUT,
    NOTIFY_CHANNEL,
    application_name,
    set_idle_session_timeout,
    set_lock_timeout,
)
from esframework.postgres._errors import translate
from esframework.postgres._sql import lease_key

__all__ = ["AsyncPostgresLease", "AsyncPostgresListener"]

logger = logging.getLogger("esframework.subscriptions")

_IDLE_SESSION_TIMEOUT_SINCE: Final = 140000
"""The server version (PostgreSQL 14) that has `idle_session_timeout`."""


class AsyncPostgresLease:
    """A session advisory lock, held on a connection of its own for as long as it is held.

    When the holder dies, its connection drops and PostgreSQL releases the lock, so a standby
    takes over at its next try. A holder that lives but stops making progress (stopped by
    SIGSTOP, a frozen VM, a handler blocked on a call, a network partition) keeps its
    connection open, and would keep the lock forever: so the lease's session has
    `idle_session_timeout` set to `timeout`, and the worker renews it as it goes (`renew`).
    A holder that renews nothing for `timeout` seconds has its session ended by the server,
    which releases the lock. Checkpoint writes check the lock is still held by this session
    (see `Statements.save_checkpoint`), which fences off a holder that lost it.
    """

    def __init__(
        self,
        conninfo: str,
        schema: str,
        subscription: str,
        *,
        lock_timeout: float | None = None,
        timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        self._conninfo = conninfo
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._set_idle_timeout = set_idle_session_timeout(timeout)
        self._name = application_name(schema)
        self.subscription = subscription
        self.key = lease_key(schema, subscription)
        self.timeout = timeout
        # Renewed several times per timeout, so one late renewal does not lose the lease.
        self.renew_every = timeout / 4
        self._renewed = 0.0
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self.pid: int | None = None

    async def acquire(self) -> bool:
        """Try once to take the lease; return whether this session holds it."""
        if self.pid is not None:
            return True
        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name=self._name
                )
                await self._connection.execute(*self._set_lock_timeout)
                if self._connection.info.server_version >= _IDLE_SESSION_TIMEOUT_SINCE:
                    await self._connection.execute(*self._set_idle_timeout)
                else:
                    logger.warning(
                        "PostgreSQL before 14 has no idle_session_timeout: the lease of %r "
                        "is released only when its holder's connection drops, not when the "
                        "holder stops making progress",
                        self.subscription,
                    )
            cursor = await self._connection.execute(
                "SELECT pg_try_advisory_lock(%s::bigint)", (self.key,)
            )
            row = await cursor.fetchone()
        except psycopg.Error as error:
            await self.release()
            raise translate(error, f"take the lease of {self.subscription!r}") from error
        if row is not None and row[0]:
            self.pid = self._connection.info.backend_pid
            self._renewed = time.monotonic()
            return True
        return False

    async def renew(self) -> None:
        """Tell the server the holder is alive, if `renew_every` seconds have passed.

        Raises:
            LeaseLostError: The lease's session is gone (the server ended it after
                `timeout` seconds without a renewal, or the connection broke): another
                instance may hold the lease now.
        """
        if self.pid is None or time.monotonic() - self._renewed < self.renew_every:
            return
        assert self._connection is not None  # noqa: S101 -- held: acquire connected
        try:
            await self._connection.execute("SELECT")
        except psycopg.Error as error:
            await self.release()
            raise LeaseLostError(self.subscription, f"its session ended: {error}") from error
        self._renewed = time.monotonic()

    async def release(self) -> None:
        """Give the lease up (closing its connection releases the lock)."""
        self.pid = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()


class AsyncPostgresListener:
    """A connection that LISTENs for append notifications."""

    def __init__(self, conninfo: str, schema: str, *, lock_timeout: float | None = None) -> None:
        self._conninfo = conninfo
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        self._schema = schema
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Self:
        try:
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=application_name(self._schema)
            )
            await self._connection.execute(*self._set_lock_timeout)
            await self._connection.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL))
            )
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def wait(self, timeout: float) -> None:
        """Return at the next append to this schema, or after `timeout` seconds."""
        assert self._connection is not None  # noqa: S101 -- entered as a context manager
        try:
            async for notice in self._connection.notifies(timeout=timeout):
                if notice.payload == self._schema:
                    return
        except psycopg.Error as error:
            raise translate(error, "listen for appended events") from error
