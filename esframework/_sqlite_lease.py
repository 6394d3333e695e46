"""Subscription leases on SQLite: a file lock for holders that die, a row for those that hang.

A file lock beside the database is released by the operating system when its holder dies,
so a standby takes over at once. But a holder stopped by SIGSTOP, frozen or blocked in a
handler keeps it forever. So the lease is also a row in `subscription_leases`, with the
holder's token and an expiry `timeout` seconds after the holder last renewed it. A standby
that finds the file locked and the row expired breaks the lease: it puts a fresh lock file
in place of the old one (the stopped holder keeps its lock on a file no one opens any more)
and writes its own token. Checkpoint writes check the row still names their holder, in the
same write transaction, which SQLite serializes with a takeover: a holder that woke after
losing the lease commits nothing.

What no lease can change: a holder stopped inside a write transaction (in the middle of a
batch) keeps SQLite's write lock, and every writer of the file waits for it until it is
killed or resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from esframework.errors import LeaseLostError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from esframework._sqlite import SQLiteEventStore

__all__ = ["DEFAULT_LEASE_TIMEOUT", "SQLiteLease"]

logger = logging.getLogger("esframework.subscriptions")

DEFAULT_LEASE_TIMEOUT = 20.0
"""Seconds a lease outlives its holder's last renewal."""


class SQLiteLease:
    """The right to be a subscription's one active instance, held in the store's file.

    A private in-memory database is one process's alone: its lease always succeeds.
    """

    def __init__(self, store: SQLiteEventStore, subscription: str, timeout: float) -> None:
        self._store = store
        self.subscription = subscription
        self.timeout = timeout
        # Renewed several times per timeout, so one late renewal does not lose the lease.
        self.renew_every = timeout / 4
        digest = hashlib.sha256(subscription.encode()).hexdigest()[:16]
        self._path = None if store.path == ":memory:" else f"{store.path}-lease-{digest}"
        self._file: int | None = None
        self._renewed = 0.0
        self.holder: str | None = None  # this instance's token, while it holds the lease

    def acquire(self) -> bool:
        """Try once to take the lease; return whether this instance holds it."""
        if self._path is None or self.holder is not None:
            return True
        token = uuid.uuid4().hex
        descriptor = _lock(self._path)
        try:
            with self._errors("take the lease of"), self._store.transaction() as db:
                now = time.time()
                if descriptor is None:  # locked: by a live holder, or by a hung one?
                    row = db.execute(
                        "SELECT expires_at FROM subscription_leases WHERE subscription_id = ?",
                        (self.subscription,),
                    ).fetchone()
                    if row is None or row[0] >= now:
                        return False
                    descriptor = _replace(self._path, token)
                db.execute(
                    "INSERT OR REPLACE INTO subscription_leases "
                    "(subscription_id, holder, expires_at) VALUES (?, ?, ?)",
                    (self.subscription, token, now + self.timeout),
                )
        except BaseException:
            if descriptor is not None:
                os.close(descriptor)
            raise
        self._file, self.holder = descriptor, token
        self._renewed = time.monotonic()
        return True

    def renew(self) -> None:
        """Push the expiry back, if `renew_every` seconds have passed since the last time.

        Inside the worker's batch it joins the batch's transaction.

        Raises:
            LeaseLostError: The lease expired and another instance took it.
        """
        if not self.due():
            return
        with self._errors("renew the lease of"), self._store.transaction() as db:
            kept = db.execute(
                "UPDATE subscription_leases SET expires_at = ? "
                "WHERE subscription_id = ? AND holder = ?",
                (time.time() + self.timeout, self.subscription, self.holder),
            ).rowcount
        if kept != 1:
            self.release()
            raise LeaseLostError(self.subscription, "it expired and another instance took it")
        self._renewed = time.monotonic()

    def due(self) -> bool:
        """Whether `renew` has work to do (a cheap check, called before every event)."""
        return self.holder is not None and time.monotonic() - self._renewed >= self.renew_every

    def release(self) -> None:
        """Give the lease up, so a standby need not wait for it to expire."""
        holder, self.holder = self.holder, None
        if self._file is not None:
            descriptor, self._file = self._file, None
            os.close(descriptor)  # closing the file releases the lock
        if holder is None:
            return
        try:
            with self._errors("release the lease of"), self._store.transaction() as db:
                db.execute(
                    "DELETE FROM subscription_leases WHERE subscription_id = ? AND holder = ?",
                    (self.subscription, holder),
                )
        except StoreError as error:  # it expires on its own
            logger.warning(
                "subscription %s: could not release its lease: %s", self.subscription, error
            )

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            message = f"could not {doing} {self.subscription!r} in SQLite store {self._store.path}"
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
                raise StoreUnavailableError(f"{message}: {error}") from error
            raise StoreError(f"{message}: {error}") from error


def _lock(path: str) -> int | None:
    """Lock the lease file at `path`; return its descriptor, or None if another holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A standby may have put a fresh file in place meanwhile: this one is no lease.
        if os.fstat(descriptor).st_ino == Path(path).stat().st_ino:
            return descriptor
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(descriptor)
    return None


def _replace(path: str, token: str) -> int:
    """Put a fresh, locked lease file in place of a hung holder's; return its descriptor."""
    fresh = f"{path}-{token}"
    descriptor = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    Path(fresh).replace(path)
    return descriptor
