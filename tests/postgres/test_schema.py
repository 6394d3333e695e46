"""The PostgreSQL schema: seed tables and columns, versioned migrations, append-only history."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg import sql

from esframework.postgres import MIGRATIONS, PostgresEventStore, migrate
from tests.domain import Wallet

SEED_COLUMNS = {
    "events": {
        "id",
        "stream_id",
        "stream_type",
        "event_type",
        "event_data",
        "metadata",
        "version",
        "global_position",
        "created_at",
    },
    "snapshots": {"stream_id", "stream_type", "snapshot_data", "version", "created_at"},
    "subscription_checkpoints": {"subscription_id", "last_position", "updated_at"},
}


def columns(dsn: str, schema: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        return {name for (name,) in rows}


def test_migration_creates_the_seed_tables_and_columns(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Every table and column of the original schema exists under its name."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        applied = migrate(conn, postgres_schema)
    assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
    for table, expected in SEED_COLUMNS.items():
        assert expected <= columns(postgres_dsn, postgres_schema, table), table


def test_migrating_twice_applies_nothing_the_second_time(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Migrations are recorded: a second run finds nothing to do."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        assert migrate(conn, postgres_schema)
        assert migrate(conn, postgres_schema) == []
        recorded = conn.execute(
            sql.SQL("SELECT version FROM {}.esframework_migrations").format(
                sql.Identifier(postgres_schema)
            )
        ).fetchall()
    assert [v for (v,) in recorded] == [m.version for m in MIGRATIONS]


def test_migrate_command_prints_what_it_applied(postgres_dsn: str, postgres_schema: str) -> None:
    """`esframework migrate --dsn` prints each migration applied, then that nothing is left."""
    command = [sys.executable, "-m", "esframework._cli", "migrate", "--dsn", postgres_dsn]
    command += ["--schema", postgres_schema]
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "applied 0001" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "nothing to apply" in second.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {}.events SET event_data = '{{}}'",
        "DELETE FROM {}.events",
        "TRUNCATE {}.events",
    ],
)
def test_database_rejects_rewriting_history(
    postgres_store: PostgresEventStore, postgres_dsn: str, statement: Any
) -> None:
    """UPDATE, DELETE and TRUNCATE on the events table fail in the database itself."""
    from esframework import Repository

    Repository(Wallet, store=postgres_store).save(Wallet.open("w", "Ada"))
    query = sql.SQL(statement).format(sql.Identifier(postgres_store.schema))
    with (
        psycopg.connect(postgres_dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.RestrictViolation, match="append-only"),
    ):
        conn.execute(query)
    assert postgres_store.stream_version("w") == 1
