"""Fixtures shared by the whole suite: one store of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esframework import EventStore, InMemoryEventStore, SQLiteEventStore

pytest_plugins = ["tests.fixtures.postgres"]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[EventStore]:
    """Each test using this fixture runs once per store backend."""
    if request.param == "memory":
        yield InMemoryEventStore()
    elif request.param == "sqlite":
        with SQLiteEventStore(sqlite_path) as sqlite:
            yield sqlite
    else:
        yield request.getfixturevalue("postgres_store")
