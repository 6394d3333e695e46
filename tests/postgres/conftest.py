"""Fixtures of the PostgreSQL-only tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.cluster import Cluster


@pytest.fixture
def names(postgres_dsn: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    chosen = {"es_owner": f"es_owner_{suffix}", "es_app": f"es_app_{suffix}", "es": f"es_{suffix}"}
    yield chosen
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for schema in (chosen["es"], chosen["es_app"]):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        for role in (chosen["es_app"], chosen["es_owner"]):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster of its own, for a test that kills or stops the server."""
    throwaway = Cluster()
    throwaway.start()
    yield throwaway
    throwaway.close()
