"""The PostgreSQL event store (install `esframework[postgres]`).

The only part of esframework that imports psycopg.
"""

from esframework.postgres._migrations import migrate
from esframework.postgres._migrations_async import migrate_async
from esframework.postgres._schema import MIGRATIONS, Migration
from esframework.postgres._store import PostgresEventStore
from esframework.postgres._store_async import AsyncPostgresEventStore

__all__ = [
    "MIGRATIONS",
    "AsyncPostgresEventStore",
    "Migration",
    "PostgresEventStore",
    "migrate",
    "migrate_async",
]
