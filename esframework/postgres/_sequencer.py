"""Global positions, assigned after commit by a sequencing pass on a thread of the store's.

Appends insert events without a position and never wait for each other. A pass (migration
3's `esframework_sequence` function) numbers the committed, unpositioned events in insert
order; passes run one at a time across every process, and only committed rows can be seen,
so positions follow commit order and a reader paging by position never skips an event.

Each store runs passes on a thread of its own, woken by its appends' commits, and sweeps once
a `sweep_interval` for events that another process committed but could not position (it was
killed between its commit and its pass). The async store uses the same thread: passes never
run on an event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Final

import psycopg

from esframework.postgres._connection_setup import application_name
from esframework.postgres._sql import BUSY, SEQUENCE_BATCH, Statements

__all__ = ["Sequencer"]

logger = logging.getLogger(__name__)

WAIT_LIMIT: Final = 10.0
"""Seconds a read waits for this store's own appends to be positioned before giving up."""

BATCH_INTERVAL: Final = 0.002
"""Seconds between the starts of two passes while appends keep coming and no read of this
store waits: the appends of that time share one pass instead of paying one each."""

# Connections inherited from a parent process: never used, never closed (closing would end
# the parent's session), only kept from the garbage collector.
_inherited: list[object] = []


class Sequencer:
    """Runs sequencing passes for one store, and lets its readers read their own writes.

    Args:
        conninfo: Where to connect; the pass runs on a connection of its own.
        statements: The store's statements.
        sweep_interval: Seconds between passes when no local append woke the thread.
        connect: Extra keyword arguments for `psycopg.connect` (the store's settings).
    """

    def __init__(
        self,
        conninfo: str,
        statements: Statements,
        *,
        sweep_interval: float = 1.0,
        connect: dict[str, Any] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._statements = statements
        self._sweep_interval = sweep_interval
        self.batch_interval = BATCH_INTERVAL
        self._connect = {
            "application_name": application_name(statements.schema),
            **(connect or {}),
            "autocommit": True,
            "prepare_threshold": None,
        }
        self._start_fresh()

    def _start_fresh(self) -> None:
        self._pid = os.getpid()
        self._condition = threading.Condition()
        self._committed = 0  # appends of this store that committed
        self._sequenced = -1  # the count of those known positioned (-1: no pass ran yet)
        self._stopping = False
        self._readers = 0  # reads of this store waiting for its appends' positions
        self._last_pass = 0.0  # when the latest pass began (time.monotonic)
        self._thread: threading.Thread | None = None
        self._connection: psycopg.Connection[Any] | None = None

    def committed(self) -> None:
        """Note that an append of this store committed: position it soon."""
        self._ensure_running()
        with self._condition:
            self._committed += 1
            self._condition.notify_all()

    def behind(self) -> bool:
        """Whether some committed append of this store (or a stray one) may lack a position."""
        return self._sequenced < self._committed or self._pid != os.getpid()

    def wait_caught_up(self) -> None:
        """Wait until every append of this store committed so far has its position.

        The first call also waits for one pass, so events an earlier process left
        unpositioned are positioned before this store's first read.
        """
        self._ensure_running()
        with self._condition:
            target = self._committed
            self._readers += 1
            self._condition.notify_all()  # a pass held back for batching runs now
            try:
                caught_up = self._condition.wait_for(
                    lambda: self._sequenced >= target or self._stopping, timeout=WAIT_LIMIT
                )
            finally:
                self._readers -= 1
            if not caught_up:
                logger.warning(
                    "schema %s: events appended here still have no global position after "
                    "%.0f s (is the database reachable?); reading without them",
                    self._statements.schema,
                    WAIT_LIMIT,
                )

    def close(self) -> None:
        """Position what this store appended, then stop the thread and close its connection."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join()
        self._thread = None

    def _ensure_running(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's thread and connection stay there
            _inherited.append(self._connection)
            self._start_fresh()
        if self._thread is None and not self._stopping:
            with self._condition:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run,
                        name=f"esframework-sequencer:{self._statements.schema}",
                        daemon=True,
                    )
                    self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: self._sequenced < self._committed or self._stopping,
                    timeout=self._sweep_interval,
                )
                self._condition.wait_for(
                    lambda: self._readers > 0 or self._stopping,
                    timeout=self._last_pass + self.batch_interval - time.monotonic(),
                )
                self._last_pass = time.monotonic()
                target, local = self._committed, self._sequenced < self._committed
                stopping = self._stopping
            try:
                self._pass(must_run=local or stopping)
            except Exception as error:  # noqa: BLE001 -- the thread must outlive any failure:
                # every read of this store waits for it.
                failures += 1
                self._drop_connection()
                if stopping:
                    logger.warning(
                        "schema %s: final sequencing pass failed: %s", self._schema, error
                    )
                    break
                logger.warning(
                    "schema %s: sequencing pass failed (%s); retrying", self._schema, error
                )
                time.sleep(min(0.05 * 2**failures, 2.0))
                continue
            failures = 0
            with self._condition:
                self._sequenced = max(self._sequenced, target)
                self._condition.notify_all()
            if stopping:
                break
        self._drop_connection()

    @property
    def _schema(self) -> str:
        return self._statements.schema

    def _pass(self, *, must_run: bool) -> None:
        """Position every committed event; with `must_run`, queue behind another process's
        pass (it may have started before this store's commit, and not see it) instead of
        trying again for the lock: the lock's queue is first come, first served, so this
        store waits one pass at most, where retries could lose to other processes' for many.
        Once it has the lock, it runs no pass of its own if another began after it queued
        and positioned everything it saw (the function returns `COVERED`)."""
        while True:
            positioned = self._call_sequence(wait=must_run)
            if positioned < SEQUENCE_BATCH:  # BUSY and COVERED are negative: done too
                return

    def _call_sequence(self, *, wait: bool) -> int:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._conninfo, **self._connect)
            # A pass that hangs holds every position back: bound it.
            self._connection.execute("SET statement_timeout = '30s'")
            # A pass changes no event, only numbers committed ones, so it need not wait for
            # its WAL flush (which doubled the delay to delivery, and held the pass lock
            # through every flush). Should the server crash before the flush, the pass is
            # lost as a whole and the next one numbers the same events again; no reader can
            # have stored a lost position in this database meanwhile, since its commit
            # would have flushed the pass first (WAL is flushed in order), and the first
            # pass after a crash numbers past every position a reader elsewhere can have
            # seen (migration 10).
            self._connection.execute("SET synchronous_commit = off")
        cursor = self._connection.execute(self._statements.sequence, (SEQUENCE_BATCH, wait))
        row = cursor.fetchone()
        return BUSY if row is None else int(row[0])

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
