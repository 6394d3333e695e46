"""The courses' tests run on every store: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from esframework import EventStore


@pytest.fixture(params=["memory", "sqlite"])  # PostgreSQL joins as its tags land
def store(request: pytest.FixtureRequest) -> EventStore:
    store: EventStore = request.getfixturevalue(f"{request.param}_store")
    return store


@pytest.fixture(params=["sqlite"])  # PostgreSQL joins as its tags land
def subscription_store(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_store")
