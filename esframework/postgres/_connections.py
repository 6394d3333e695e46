# WARNING: generated from _connections_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The PostgreSQL store's base: running statements on pooled connections, retrying lost ones."""

from __future__ import annotations

import contextvars
import logging
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import MappingProxyType
from typing import Any, Final, LiteralString, TypeAlias, TypeVar
from uuid import UUID

import psycopg
from psycopg import pq, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from esframework._queries import AppendCondition
from esframework._unit_lock import UnitLock
from esframework.errors import StoreError, StoreUnavailableError
from esframework.postgres._errors import (
    is_connection_lost,
    translate,
)

__all__ = ["UNITS", "Connections", "OpenUnit", "Params", "Statement"]

# The store's logger, by the name it had before this module was split from it.
logger = logging.getLogger("esframework.postgres._store")

PROBE_TIMEOUT: Final = 3
"""Seconds the connection that asks why the pool had none may take to connect."""

T = TypeVar("T")
Statement: TypeAlias = bytes | sql.Composed | LiteralString
Params: TypeAlias = Sequence[Any] | dict[str, Any] | None
_Work: TypeAlias = Callable[[psycopg.Connection[Any]], T]


class OpenUnit:
    """A unit of work's connection, cleared when the unit ends.

    Tasks started inside a unit copy the context that names it, so their calls share its
    connection: each call holds `lock` for its whole use of it (a savepoint's statements
    must not interleave with another's), so they take turns. Such tasks may outlive the
    unit: once it has ended, their calls must not run on a connection that went back to the
    pool.
    """

    __slots__ = ("appended", "connection", "lock")

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection: psycopg.Connection[Any] | None = connection
        self.lock = UnitLock()
        # The ids of the events the unit wrote, in order: they get positions only after it
        # commits. A read by query returns those that match; a condition passes over those
        # of them its decision's read returned (`AppendCondition.seen`). A retry's ids are
        # not here: its events are another transaction's (or here already), and get their
        # positions from that one's commit.
        self.appended: list[UUID] = []

    def own(self, condition: AppendCondition) -> list[UUID]:
        """The unit's own events that `condition` passes over (its decision read them), in
        append order: only the unit's, whatever else the condition names."""
        return [event_id for event_id in self.appended if event_id in condition.seen]

    @contextmanager
    def turn(self) -> Iterator[OpenUnit | None]:
        """Hold the unit's connection for one store call; yields None if the unit ended
        while the call waited for its turn."""
        with self.lock:
            yield None if self.connection is None else self

    def end(self) -> None:
        """Let the call of another task in progress on the connection finish, then clear it:
        later calls run outside the unit, and the unit can commit or roll back."""
        try:
            with self.lock:
                self.connection = None
        finally:  # cancelled while waiting, too
            self.connection = None


# What `_holding_unit` gives outside a unit of work.
_NO_UNIT: Final = nullcontext(None)

# The unit of work open in this thread or task, per store: its calls run on that connection.
UNITS: contextvars.ContextVar[Mapping[int, OpenUnit]] = contextvars.ContextVar(
    "esframework_postgres_units", default=MappingProxyType({})
)


# JSONB arrives as its text, unparsed: the serializer parses it with orjson, by the declared
# field types. The loader registered for `text` is psycopg's fastest (its C one, if installed).
_TEXT_LOADER = psycopg.adapters.get_loader(psycopg.postgres.types["text"].oid, pq.Format.TEXT)


def _register_loaders(connection: psycopg.Connection[Any]) -> None:
    if _TEXT_LOADER is not None:
        connection.adapters.register_loader("jsonb", _TEXT_LOADER)


class Connections:
    """How the store runs its statements: on a unit of work's connection, or a pooled one.

    The store sets these attributes; the methods here only use them.
    """

    _pool: ConnectionPool[Any]
    _opened: bool
    _attempts: int
    _configured: weakref.WeakSet[psycopg.Connection[Any]]
    _set_lock_timeout: tuple[bytes, dict[str, object]]
    conninfo: str

    def _unit(self) -> psycopg.Connection[Any] | None:
        unit = self._open_unit()
        return None if unit is None else unit.connection

    def _open_unit(self) -> OpenUnit | None:
        """The unit of work open in this thread or task, if it is still open."""
        unit = UNITS.get().get(id(self))
        return None if unit is None or unit.connection is None else unit

    def _holding_unit(self) -> AbstractContextManager[OpenUnit | None]:
        """Take the turn of a store call on the open unit of work's connection, if any.

        Tasks inside one unit share its connection; a call holds the unit's lock for as
        long as it uses it, so calls of concurrent tasks run one at a time (a call made by
        a call goes on). Yields the unit, or None outside one or if it ended while this
        call waited: the call then runs outside it, as a task that outlives its unit does.
        Outside a unit (most calls) it costs nothing but the look-up.
        """
        unit = self._open_unit()
        return _NO_UNIT if unit is None else unit.turn()

    def _turn_on(
        self, connection: psycopg.Connection[Any]
    ) -> AbstractContextManager[OpenUnit | None]:
        """Take the unit's turn for a write given `connection`, if it is the open unit's.

        The subscription worker writes its checkpoint and parks events on the connection of
        its batch's unit; a handler's task may still be appending there, between its
        savepoint and that savepoint's release or rollback. Taking turns keeps the write
        out of the task's savepoint, where the task's rollback would undo it unseen.
        """
        unit = self._open_unit()
        if unit is None or unit.connection is not connection:
            return _NO_UNIT
        return unit.turn()

    def _fetch(
        self,
        doing: str,
        query: Statement,
        params: Params,
        *,
        returns_rows: bool = True,
        prepare: bool | None = None,
    ) -> list[Any]:
        def work(conn: psycopg.Connection[Any]) -> list[Any]:
            cursor = conn.execute(query, params, prepare=prepare)
            return cursor.fetchall() if returns_rows else []

        return self._run(doing, work)

    def _ensure_open(self) -> None:
        if not self._opened:
            # Opening twice is harmless: psycopg_pool ignores a second open().
            self._pool.open(wait=False)
            self._opened = True

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection, given the store's settings the first time it is lent."""
        with self._pool.connection() as conn:
            if conn not in self._configured:
                _register_loaders(conn)
                query, params = self._set_lock_timeout
                conn.execute(query, params)
                if not conn.autocommit:  # keep the setting: a rollback would undo it
                    conn.commit()
                self._configured.add(conn)
            yield conn

    def _run(self, doing: str, work: _Work[T]) -> T:
        """Run `work` on a pooled connection, retrying on a fresh one if the connection is lost.

        Inside a unit of work, run it on the unit's connection, once: a lost transaction
        cannot be retried statement by statement.
        """
        with self._holding_unit():
            unit = self._unit()
            if unit is not None:
                try:
                    return work(unit)
                except psycopg.Error as error:
                    raise translate(error, doing) from error
        self._ensure_open()
        attempt = 1
        while True:
            try:
                with self._borrow() as conn:
                    return work(conn)
            except PoolTimeout as error:
                raise self._no_connection(error, doing) from error
            except psycopg.Error as error:
                if attempt == self._attempts or not is_connection_lost(error):
                    raise translate(error, doing) from error
                logger.warning("connection lost (%s); retrying to %s", error, doing)
                time.sleep(0.05 * 2**attempt)
                attempt += 1

    def _no_connection(self, error: PoolTimeout, doing: str) -> StoreError:
        """Say why no pooled connection came in time: the server's own reason, if a
        connection of its own fails too (the pool only logs why its attempts fail)."""
        try:
            probe = psycopg.Connection.connect(
                self.conninfo, connect_timeout=PROBE_TIMEOUT, autocommit=True
            )
        except psycopg.Error as refused:
            reason = "; ".join(line.strip() for line in str(refused).splitlines() if line.strip())
            return StoreUnavailableError(
                f"could not {doing}: the server cannot be reached: {reason}"
            )
        probe.close()
        return translate(error, doing)
