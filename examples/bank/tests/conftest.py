"""The bank's tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from esframework import SubscriptionStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> SubscriptionStore[Any]:
    store: SubscriptionStore[Any] = request.getfixturevalue(f"{request.param}_store")
    return store
