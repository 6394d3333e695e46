"""How the PostgreSQL stores read psycopg's errors: shared by the sync and async shells."""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import errors
from psycopg_pool import PoolTimeout

from esframework.errors import StoreError, StoreUnavailableError

__all__ = [
    "condition_conflict",
    "found_stream_closed",
    "is_connection_lost",
    "translate",
    "violated_constraint",
]

# Server sqlstates that mean "this connection is gone", as opposed to "this statement failed":
# admin shutdown, crash, cannot connect, and the server ending a session left idle too long
# (a transaction: idle_in_transaction_session_timeout; a lease's session: idle_session_timeout).
_CONNECTION_GONE: Final = {"57P01", "57P02", "57P03", "57P05", "25P03"}


def is_connection_lost(error: psycopg.Error) -> bool:
    """Return whether `error` lost the connection (so retrying on a fresh one may succeed)."""
    if isinstance(error, PoolTimeout):
        return False
    state = error.sqlstate
    if state in _CONNECTION_GONE:
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    return state is None or state.startswith("08")


def violated_constraint(error: psycopg.Error) -> str | None:
    """Return the name of the unique constraint `error` violated, if that is what it is."""
    if isinstance(error, errors.UniqueViolation):
        return error.diag.constraint_name
    return None


def found_stream_closed(error: psycopg.Error) -> bool:
    """Return whether the insert check refused an event after a tombstone (migration 6)."""
    return (
        isinstance(error, errors.RestrictViolation)
        and error.diag.constraint_name == "stream_closed"
    )


def condition_conflict(error: psycopg.Error) -> int | None:
    """Return the first conflicting position if `error` is a failed append condition
    (migration 8's check: 0 for an event not positioned yet), else None."""
    if (
        isinstance(error, errors.RestrictViolation)
        and error.diag.constraint_name == "append_condition"
    ):
        return int(error.diag.message_detail or 0)
    return None


def translate(error: Exception, doing: str) -> StoreError:
    """Return the framework's error for a psycopg or pool error met while `doing` something."""
    if isinstance(error, errors.LockNotAvailable):
        return StoreError(
            f"could not {doing}: waited longer than lock_timeout for another transaction's "
            "append to finish (is a transaction that appended left open?)"
        )
    if isinstance(error, PoolTimeout):
        return StoreUnavailableError(
            f"could not {doing}: no database connection became free in time (the pool is "
            f"exhausted, or the server unreachable; raise max_size or pool_timeout): {error}"
        )
    if isinstance(error, psycopg.Error) and is_connection_lost(error):
        return StoreUnavailableError(f"could not {doing}: the connection was lost: {error}")
    return StoreError(f"could not {doing}: {error}")
