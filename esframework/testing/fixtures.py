"""pytest fixtures: an event store of each kind, empty for each test.

Enable them in your top-level conftest.py::

    pytest_plugins = ["esframework.testing.fixtures"]

- `memory_store`, `sqlite_store`: need nothing.
- `postgres_store`: a fresh schema on the server named by the ESFRAMEWORK_TEST_DSN environment
  variable, migrated, and dropped after the test. Without the variable the test fails, saying
  what to set. Tests using it are marked `postgres`, so `-m "not postgres"` skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from esframework import InMemoryEventStore, SQLiteEventStore

if TYPE_CHECKING:
    from esframework.postgres import PostgresEventStore

DSN_VARIABLE = "ESFRAMEWORK_TEST_DSN"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"postgres: needs {DSN_VARIABLE} (a PostgreSQL server)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches PostgreSQL, so `-m "not postgres"` is the quick loop."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        parameters = callspec.id.split("-") if callspec else ()
        uses_server = "postgres_dsn" in getattr(item, "fixturenames", ())
        if uses_server or any(p.startswith("postgres") for p in parameters):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def memory_store() -> InMemoryEventStore:
    """An empty in-memory store."""
    return InMemoryEventStore()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    """A store in a new SQLite file."""
    with SQLiteEventStore(tmp_path / "events.db") as store:
        yield store


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, from ESFRAMEWORK_TEST_DSN."""
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        pytest.fail(
            f"{DSN_VARIABLE} is not set: PostgreSQL tests need a server, for example "
            f"{DSN_VARIABLE}=postgresql://postgres@127.0.0.1:5432/test "
            '(run only the other tests with -m "not postgres")',
            pytrace=False,
        )
    return dsn


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name of the test's own, dropped with everything in it afterwards."""
    import psycopg
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def postgres_store(postgres_dsn: str, postgres_schema: str) -> Iterator[PostgresEventStore]:
    """A migrated store in a fresh schema of the test server."""
    from esframework.postgres import PostgresEventStore

    with PostgresEventStore(postgres_dsn, schema=postgres_schema) as store:
        store.migrate()
        yield store
