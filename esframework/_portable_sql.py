"""SQL for read models written once for SQLite and PostgreSQL.

The two drivers share no parameter style: sqlite3 takes `?` or `:name`, psycopg `%s` or
`%(name)s`. Handlers write psycopg's style, which is exact (a literal `%` is always `%%`),
and these functions rewrite it for sqlite3 connections; PostgreSQL gets the statement as
written.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = ["execute_sql", "execute_sql_async"]

Params = Sequence[Any] | Mapping[str, Any]

# psycopg's placeholders: %s (and its binary and text forms %b, %t), %(name)s, and %% for %.
_PLACEHOLDER = re.compile(r"%(?:(%)|([sbt])|\((\w+)\)[sbt]|(.?))", re.DOTALL)


def execute_sql(connection: Any, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
    """Run a statement written with psycopg's placeholders on a handler's connection.

    Works on a `sqlite3.Connection` (SQLite stores, sync and async) and a
    `psycopg.Connection` (PostgreSQL): write `%s` for positional parameters, `%(name)s`
    for named ones (with a mapping), and `%%` for a literal `%`.

    Returns:
        The statement's rows, or an empty list for one that returns none.

    Raises:
        ValueError: `statement` has a `%` that is not a placeholder or `%%`.
    """
    cursor = connection.execute(_for_connection(connection, statement), params)
    return list(cursor.fetchall()) if cursor.description else []


async def execute_sql_async(
    connection: Any, statement: str, params: Params = ()
) -> list[tuple[Any, ...]]:
    """`execute_sql` for async handlers: on `psycopg.AsyncConnection` or the
    `sqlite3.Connection` of `AsyncSQLiteEventStore`."""
    if isinstance(connection, sqlite3.Connection):
        return execute_sql(connection, statement, params)
    cursor = await connection.execute(statement, params)
    return list(await cursor.fetchall()) if cursor.description else []


def _for_connection(connection: Any, statement: str) -> str:
    return _for_sqlite(statement) if isinstance(connection, sqlite3.Connection) else statement


@lru_cache(maxsize=512)  # a handler runs the same few statements for every event
def _for_sqlite(statement: str) -> str:
    def replace(match: re.Match[str]) -> str:
        percent, positional, name, other = match.groups()
        if percent:
            return "%"
        if positional:
            return "?"
        if name:
            return f":{name}"
        msg = f"only %s, %(name)s and %% may follow a % in SQL, not %{other}: {statement!r}"
        raise ValueError(msg)

    return _PLACEHOLDER.sub(replace, statement)
