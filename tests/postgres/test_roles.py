"""The least-privilege setup in the docs works as documented."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from esframework import Repository
from esframework.postgres import PostgresEventStore, migrate
from tests.domain import Wallet

SETUP = Path(__file__).parents[2] / "docs" / "snippets" / "least-privilege.sql"


@pytest.fixture
def names(postgres_dsn: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    chosen = {"es_owner": f"es_owner_{suffix}", "es_app": f"es_app_{suffix}", "es": f"es_{suffix}"}
    yield chosen
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(chosen["es"]))
        )
        for role in (chosen["es_app"], chosen["es_owner"]):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def statements(step: int, names: dict[str, str]) -> list[str]:
    """The SQL statements of one numbered step of the documented setup, with our names."""
    text = SETUP.read_text()
    part = text.split(f"-- {step}. ")[1].split("\n\n")[0]
    lines = part.splitlines()[1:]  # the first line is the rest of the heading
    body = "\n".join(line for line in lines if not line.startswith("--"))
    body = re.sub(r"\b(es_owner|es_app|es)\b", lambda m: names[m.group(1)], body)
    return [s.strip() for s in body.split(";") if s.strip()]


def test_application_role_appends_and_reads_but_cannot_rewrite(
    postgres_dsn: str, names: dict[str, str]
) -> None:
    """The app role can do everything the store needs, and nothing that rewrites history."""
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        for statement in statements(1, names):
            admin.execute(statement)
    owner_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_owner"])
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        migrate(owner, names["es"])
        for statement in statements(3, names):
            owner.execute(statement)

    app_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_app"])
    with PostgresEventStore(app_dsn, schema=names["es"]) as store:
        wallets = Repository(Wallet, store=store)
        wallets.save(Wallet.open("w", "Ada"), snapshot=True)
        assert wallets.load("w").owner == "Ada"
        assert store.read_all()[0].stream_id == "w"
    events = sql.Identifier(names["es"], "events")
    with psycopg.connect(app_dsn, autocommit=True) as app:
        for forbidden in ("UPDATE {} SET version = 9", "DELETE FROM {}", "TRUNCATE {}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql.SQL(forbidden).format(events))
