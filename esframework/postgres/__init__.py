"""The PostgreSQL event store (install `esframework[postgres]`).

The only part of esframework that imports psycopg.
"""

from esframework.postgres._migrations import MIGRATIONS, Migration, migrate
from esframework.postgres._store import PostgresEventStore

__all__ = ["MIGRATIONS", "Migration", "PostgresEventStore", "migrate"]
