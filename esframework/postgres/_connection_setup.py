"""How the PostgreSQL stores set up their connections: name, timeouts, search path, channel."""

from __future__ import annotations

from typing import Final

import psycopg.conninfo
from psycopg import sql

__all__ = [
    "DEFAULT_LEASE_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "NOTIFY_CHANNEL",
    "application_name",
    "pool_conninfo",
    "set_idle_session_timeout",
    "set_lock_timeout",
    "set_search_path",
]


def application_name(schema: str) -> str:
    """What the store's connections call themselves in `pg_stat_activity`."""
    return f"esframework:{schema}"[:63]


NOTIFY_CHANNEL: Final = "esframework_events"
"""Sequencing passes notify this channel with their schema's name (migration 3)."""


def pool_conninfo(conninfo: object, kwargs: object) -> str:
    """A user pool's connection string with its keyword settings folded in, for the lease
    and listener connections the store opens outside the pool ("" if it cannot be known)."""
    if not isinstance(conninfo, str):
        return ""
    settings = kwargs if isinstance(kwargs, dict) else {}
    libpq = {k: v for k, v in settings.items() if k not in _NOT_CONNINFO}
    return psycopg.conninfo.make_conninfo(conninfo, **libpq)


# Keyword arguments of connect() that configure the Python connection, not libpq.
_NOT_CONNINFO: Final = frozenset(
    {"autocommit", "prepare_threshold", "row_factory", "cursor_factory", "context"}
)


DEFAULT_LOCK_TIMEOUT: Final = 10.0
"""Seconds an append waits for the append lock where neither the store nor the connection
sets `lock_timeout` (PostgreSQL's own default, 0, would wait forever)."""

# Run once on each connection the store uses (pooled, lease, listener), after connecting, so
# the connection string's `options` stay untouched. A lock_timeout given to the store always
# applies; the default only where the connection has none of its own (0): one set by the
# connection string, PGOPTIONS, the role or the database is kept. The same holds for
# idle_in_transaction_session_timeout, set on pooled connections only. A statement_timeout
# given to the store (pooled connections only) always applies.
_SET_LOCK_TIMEOUT: Final = b"""
    SELECT CASE WHEN %(lock_given)s OR current_setting('lock_timeout') = '0'
                THEN set_config('lock_timeout', %(lock)s, false) END,
           CASE WHEN %(idle)s::text IS NOT NULL
                     AND current_setting('idle_in_transaction_session_timeout') = '0'
                THEN set_config('idle_in_transaction_session_timeout', %(idle)s, false) END,
           CASE WHEN %(statement)s::text IS NOT NULL
                THEN set_config('statement_timeout', %(statement)s, false) END
    """


def set_lock_timeout(
    lock_timeout: float | None,
    *,
    idle_in_transaction: float | None = None,
    statement_timeout: float | None = None,
) -> tuple[bytes, dict[str, object]]:
    """The statement that gives a connection the store's `lock_timeout` (and, if given, an
    `idle_in_transaction_session_timeout` and a `statement_timeout`), and its parameters."""
    seconds = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
    return _SET_LOCK_TIMEOUT, {
        "lock_given": lock_timeout is not None,
        "lock": f"{round(seconds * 1000)}ms",
        "idle": _milliseconds(idle_in_transaction),
        "statement": _milliseconds(statement_timeout),
    }


def _milliseconds(seconds: float | None) -> str | None:
    return None if seconds is None else f"{round(seconds * 1000)}ms"


DEFAULT_LEASE_TIMEOUT: Final = 20.0
"""Seconds a subscription's lease survives without a renewal from its holder: the longest a
standby waits behind a holder that stopped (plus its `lease_interval`)."""


def set_idle_session_timeout(timeout: float) -> tuple[bytes, tuple[str]]:
    """The statement that makes the server end a lease's session idle for `timeout` seconds.

    The server's own clock, not the holder's, decides: a holder that is stopped, frozen or cut
    off by the network cannot keep the lock by keeping its connection open.
    """
    return b"SELECT set_config('idle_session_timeout', %s, false)", (f"{round(timeout * 1000)}ms",)


# Run at the start of each unit of work (a subscription batch too), so unqualified table
# names in a handler's SQL resolve to the store's schema first, as on SQLite they resolve
# to the store's file; the connection's own path follows. Local to the transaction: the
# store's own statements name their schema, and a shared pool's other users are unaffected.
# One round trip per unit; rendered once, without parameters (the simple protocol is the
# cheaper one).
_SET_SEARCH_PATH: Final = (
    "SELECT set_config('search_path', "
    "concat_ws(', ', {}, nullif(current_setting('search_path'), '')), true)"
)


def set_search_path(schema: str) -> bytes:
    """The statement that puts `schema` first on a transaction's search_path."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return sql.SQL(_SET_SEARCH_PATH).format(sql.Literal(quoted)).as_bytes(None)
