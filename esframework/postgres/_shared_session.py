# WARNING: generated from _shared_session_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""One lease session for every subscription of a runner (PostgreSQL).

A runner's workers take their advisory locks on one shared session instead of a connection
each. The session is the unit the server can end, so the guarantee that a holder making no
progress loses its lease (see `PostgresLease`) becomes: a runner loses every lease it holds
when any of its holders makes no progress. Each holder checks in on every `renew`; the session
is renewed only while every holder has checked in within half the lease timeout, and its
`idle_session_timeout` is the other half, so a hung holder's runner loses its leases within the
lease timeout. A session used while a holder is overdue is closed at once by whoever uses it.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from esframework._subscription_store import Listener
from esframework.errors import LeaseLostError
from esframework.postgres._connection_setup import (
    DEFAULT_LEASE_TIMEOUT,
    application_name,
    set_idle_session_timeout,
    set_lock_timeout,
)
from esframework.postgres._coordination import (
    _IDLE_SESSION_TIMEOUT_SINCE,
    PostgresLease,
)
from esframework.postgres._errors import translate
from esframework.postgres._shared_listener import SharedListener

__all__ = ["RunnerCoordination", "SharedLease", "SharedLeaseSession"]

logger = logging.getLogger("esframework.subscriptions")


class SharedLeaseSession:
    """The one connection on which a runner's leases are held (see the module's docstring)."""

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        lock_timeout: float | None = None,
        timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._lock_timeout = lock_timeout
        self._set_lock_timeout = set_lock_timeout(lock_timeout)
        # Half for the holders' check-ins, half for the server: a hung holder's last check-in
        # renews the session at most half a timeout later, which the server ends half after.
        self.overdue_after = timeout / 2
        self._set_idle_timeout = set_idle_session_timeout(timeout / 2)
        self.timeout = timeout
        self.renew_every = timeout / 4
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._renewed = 0.0
        self.generation = 0
        """Counts the sessions opened: a lease taken on an earlier one is lost."""
        self._check_ins: dict[SharedLease, float] = {}

    def lease(self, subscription: str) -> SharedLease:
        """Return the lease of `subscription`, to be taken on this session."""
        return SharedLease(self, subscription)

    @property
    def pid(self) -> int | None:
        """The backend pid of the session, if it is open."""
        connection = self._connection
        return None if connection is None or connection.closed else connection.info.backend_pid

    def _overdue(self, now: float) -> bool:
        return any(now - seen > self.overdue_after for seen in self._check_ins.values())

    def _close(self, reason: str) -> None:
        if self._check_ins:
            logger.warning("closing the runner's lease session, releasing its leases: %s", reason)
        self._check_ins.clear()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        self._close("its connection broke")
        connection = psycopg.Connection.connect(
            self._conninfo, autocommit=True, application_name=application_name(self._schema)
        )
        try:
            connection.execute(*self._set_lock_timeout)
            if connection.info.server_version >= _IDLE_SESSION_TIMEOUT_SINCE:
                connection.execute(*self._set_idle_timeout)
            else:
                logger.warning(
                    "PostgreSQL before 14 has no idle_session_timeout: the runner's leases "
                    "are released only when its lease session drops, or when one of its "
                    "workers finds another overdue"
                )
        except psycopg.Error:
            connection.close()
            raise
        self._connection = connection
        self.generation += 1
        self._renewed = time.monotonic()
        return connection

    def acquire(self, lease: SharedLease) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._overdue(now):  # trying a lock would renew the session for a hung holder
                self._close("a lease holder made no progress")
                return False
            try:
                connection = self._connect()
                cursor = connection.execute("SELECT pg_try_advisory_lock(%s::bigint)", (lease.key,))
                row = cursor.fetchone()
            except psycopg.Error as error:
                self._close(f"its connection failed: {error}")
                raise translate(error, f"take the lease of {lease.subscription!r}") from error
            if row is None or not row[0]:
                return False
            self._renewed = now
            self._check_ins[lease] = now
            lease.generation = self.generation
            lease.pid = connection.info.backend_pid
            return True

    def renew(self, lease: SharedLease) -> None:
        with self._lock:
            if lease.generation != self.generation or lease not in self._check_ins:
                raise LeaseLostError(lease.subscription, "the runner's lease session ended")
            now = time.monotonic()
            self._check_ins[lease] = now
            if self._overdue(now):
                self._close("a lease holder made no progress")
                raise LeaseLostError(lease.subscription, "another holder of the session hung")
            if now - self._renewed < self.renew_every or self._connection is None:
                return
            try:
                self._connection.execute("SELECT")
            except psycopg.Error as error:
                self._close(f"its session ended: {error}")
                raise LeaseLostError(lease.subscription, f"its session ended: {error}") from error
            self._renewed = now

    def release(self, lease: SharedLease) -> None:
        with self._lock:
            taken = self._check_ins.pop(lease, None)
            if taken is None or lease.generation != self.generation or self._connection is None:
                return
            if self._overdue(time.monotonic()):
                self._close("a lease holder made no progress")
                return
            try:
                self._connection.execute("SELECT pg_advisory_unlock(%s::bigint)", (lease.key,))
            except psycopg.Error as error:
                self._close(f"its connection failed: {error}")
            else:
                self._renewed = time.monotonic()
            if not self._check_ins:  # nothing held: a worker used outside `run` leaves no session
                self._close("no lease is held")

    def close(self) -> None:
        """Close the session (the server releases whatever it still holds)."""
        with self._lock:
            self._close("the runner stopped")


class SharedLease(PostgresLease):
    """A subscription's lease held on its runner's shared session.

    Checkpoint fencing is unchanged: `pid` names the session, and a checkpoint is written only
    while that session holds the lock.
    """

    def __init__(self, session: SharedLeaseSession, subscription: str) -> None:
        super().__init__(
            session._conninfo,  # noqa: SLF001 -- the session's own settings
            session._schema,  # noqa: SLF001
            subscription,
            lock_timeout=session._lock_timeout,  # noqa: SLF001
            timeout=session.timeout,
        )
        self._session = session
        self.generation = -1

    def acquire(self) -> bool:
        if self.pid is not None and self.generation == self._session.generation:
            return True
        self.pid = None
        return self._session.acquire(self)

    def renew(self) -> None:
        if self.pid is None:
            return
        try:
            self._session.renew(self)
        except LeaseLostError:
            self.pid = None
            raise

    def release(self) -> None:
        self.pid = None
        self._session.release(self)


class RunnerCoordination:
    """The leases and the listener of one runner: one lease session, one LISTEN connection."""

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        lock_timeout: float | None = None,
        timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        self.session = SharedLeaseSession(
            conninfo, schema, lock_timeout=lock_timeout, timeout=timeout
        )
        self._listener = SharedListener(conninfo, schema, lock_timeout=lock_timeout)

    def lease(self, subscription: str) -> SharedLease:
        """Return the lease of `subscription`, taken on the runner's session."""
        return self.session.lease(subscription)

    def listener(self) -> AbstractContextManager[Listener]:
        """Wait for appends through the runner's one LISTEN connection."""
        return self._listener.listener()

    def close(self) -> None:
        """Close the lease session; the listener closes when its last waiter leaves."""
        self.session.close()
