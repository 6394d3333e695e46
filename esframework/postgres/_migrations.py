# WARNING: generated from _migrations_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""Applying the PostgreSQL store's migrations (`_schema.py`), once each, in order.

Each migration runs inside one transaction with the record of it, so an interrupted run
leaves nothing half-applied.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from esframework.postgres._schema import MIGRATIONS, Migration

__all__ = ["migrate"]


def migrate(connection: psycopg.Connection[Any], schema: str = "public") -> list[Migration]:
    """Apply the migrations `schema` lacks, in order, and return those applied.

    Safe to run concurrently from several processes: they queue on an advisory lock, and
    the ones that come second find nothing left to do.
    """
    name = sql.Identifier(schema)
    applied: list[Migration] = []
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('esframework migrate ' || %s))", (schema,)
        )
        # Only create a missing schema: an owner role without CREATE on the database can
        # still migrate the schema it was given.
        found = connection.execute("SELECT FROM pg_namespace WHERE nspname = %s", (schema,))
        if not found.rowcount:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.esframework_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
            ).format(name)
        )
        recorded = connection.execute(
            sql.SQL("SELECT version FROM {}.esframework_migrations").format(name)
        )
        done = {version for (version,) in recorded.fetchall()}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements:
                connection.execute(
                    sql.SQL(statement).format(schema=name, schema_name=sql.Literal(schema))
                )
            connection.execute(
                sql.SQL(
                    "INSERT INTO {}.esframework_migrations (version, name) VALUES (%s, %s)"
                ).format(name),
                (migration.version, migration.name),
            )
            applied.append(migration)
    return applied
