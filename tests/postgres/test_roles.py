"""The least-privilege setup in the docs works as documented."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from esframework import (
    AppendCondition,
    AsyncSubscription,
    AsyncSubscriptionWorker,
    ConditionFailedError,
    Envelope,
    NewEvent,
    Query,
    QueryItem,
    Repository,
    Subscription,
    SubscriptionWorker,
)
from esframework.postgres import AsyncPostgresEventStore, PostgresEventStore, migrate
from tests.domain import Wallet
from tests.personal.domain import FORGOTTEN, Customer

SETUP = Path(__file__).parents[2] / "docs" / "snippets" / "least-privilege.sql"


def statements(step: int, names: dict[str, str]) -> list[str]:
    """The SQL statements of one numbered step of the documented setup, with our names."""
    text = SETUP.read_text()
    part = text.split(f"-- {step}. ")[1].split("\n\n")[0]
    lines = part.splitlines()[1:]  # the first line is the rest of the heading
    body = "\n".join(line for line in lines if not line.startswith("--"))
    body = re.sub(r"\b(es_owner|es_app|es)\b", lambda m: names[m.group(1)], body)
    return [s.strip() for s in body.split(";") if s.strip()]


def set_up(postgres_dsn: str, names: dict[str, str]) -> str:
    """Run the documented setup with our names; return the application role's DSN."""
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        for statement in statements(1, names):
            admin.execute(statement)
    owner_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_owner"])
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        migrate(owner, names["es"])
        for statement in statements(3, names):
            owner.execute(statement)
    return psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_app"])


def test_application_role_appends_and_reads_but_cannot_rewrite(
    postgres_dsn: str, names: dict[str, str]
) -> None:
    """The app role can do everything the store needs, and nothing that rewrites history."""
    app_dsn = set_up(postgres_dsn, names)
    with PostgresEventStore(app_dsn, schema=names["es"]) as store:
        wallets = Repository(Wallet, store=store)
        wallets.save(Wallet.open("w", "Ada"), snapshot=True)
        assert wallets.load("w").owner == "Ada"
        assert store.read_all()[0].stream_id == "w"
        # Personal data: saves make subjects' keys, forgetting overwrites them.
        customers = Repository(Customer, store=store)
        customers.save(Customer.register("c-1", "ada@example.com"), snapshot=True)
        assert customers.load("c-1").email == "ada@example.com"
        store.forget_personal_data("c-1")
        assert customers.load("c-1").email == FORGOTTEN
        # Tagged events, reads by query and conditional appends need no other right.
        query = Query.of(QueryItem(tags=["name:ada"]))
        claim = NewEvent(uuid.uuid4(), "Claimed", 1, "{}", tags=("name:ada",))
        store.append("c", "C", [claim], expected_version=0, condition=AppendCondition(query))
        assert [e.tags for e in store.read_query(query).events] == [("name:ada",)]
        with pytest.raises(ConditionFailedError):
            store.append(
                "d",
                "C",
                [claim._replace(event_id=uuid.uuid4())],
                expected_version=0,
                condition=AppendCondition(query),
            )
    events = sql.Identifier(names["es"], "events")
    with psycopg.connect(app_dsn, autocommit=True) as app:
        for forbidden in ("UPDATE {} SET version = 9", "DELETE FROM {}", "TRUNCATE {}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql.SQL(forbidden).format(events))


class Opened:
    """A projection into a table of the application's own schema that fails on one wallet
    (a poison event) until `cured`; the same statements serve the sync and async worker."""

    def __init__(self, names: dict[str, str]) -> None:
        self.table = sql.Identifier(names["es_app"], "opened")
        self.cured = False

    def statement(self, envelope: Envelope[Any]) -> sql.Composed:
        if envelope.stream_id == "poison" and not self.cured:
            msg = "cannot project this wallet"
            raise RuntimeError(msg)
        return sql.SQL("INSERT INTO {} (wallet) VALUES ({})").format(
            self.table, sql.Literal(envelope.stream_id)
        )

    def create(self) -> sql.Composed:
        return sql.SQL("CREATE TABLE {} (wallet text PRIMARY KEY)").format(self.table)

    def emptied(self) -> sql.Composed:
        return sql.SQL("DELETE FROM {}").format(self.table)


class SyncOpened(Opened):
    def handle(self, envelope: Envelope[Any], connection: psycopg.Connection[Any]) -> None:
        connection.execute(self.statement(envelope))

    def reset(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(self.emptied())


class AsyncOpened(Opened):
    async def handle(
        self, envelope: Envelope[Any], connection: psycopg.AsyncConnection[Any]
    ) -> None:
        await connection.execute(self.statement(envelope))

    async def reset(self, connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.execute(self.emptied())


def opened_rows(app_dsn: str, projection: Opened) -> list[str]:
    with psycopg.connect(app_dsn, autocommit=True) as app:
        query = sql.SQL("SELECT wallet FROM {} ORDER BY 1").format(projection.table)
        return [wallet for (wallet,) in app.execute(query).fetchall()]


OPTIONS: dict[str, Any] = {
    "name": "opened",
    "event_types": None,
    "dead_letter": True,
    "max_attempts": 2,
    "retry_delay": 0.01,
    "lease_interval": 0.1,
}


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_application_role_runs_parks_retries_and_rebuilds(
    postgres_dsn: str, names: dict[str, str], flavour: str
) -> None:
    """As the application role, a subscription parks a poison event, lists it, retries it
    once it is cured, and rebuilds: the role has every right dead letters need."""
    app_dsn = set_up(postgres_dsn, names)
    with PostgresEventStore(app_dsn, schema=names["es"]) as store:
        wallets = Repository(Wallet, store=store)
        for wallet in ("ada", "poison", "zoe"):
            wallets.save(Wallet.open(wallet, "Ada"))
        store.sequence()
    projection: Opened = SyncOpened(names) if flavour == "sync" else AsyncOpened(names)
    with psycopg.connect(app_dsn, autocommit=True) as app:
        app.execute(projection.create())

    def check_parked(parked: list[Any]) -> None:
        assert [p.stream_id for p in parked] == ["poison"]
        assert opened_rows(app_dsn, projection) == ["ada", "zoe"]
        projection.cured = True

    if isinstance(projection, SyncOpened):
        with PostgresEventStore(app_dsn, schema=names["es"]) as store:
            worker = SubscriptionWorker(store, Subscription(handler=projection, **OPTIONS))
            worker.run(until_caught_up=True)
            check_parked(store.parked("opened"))
            assert worker.retry_parked() == []
            assert store.parked("opened") == []
            worker.rebuild()
            head = store.head()
            assert store.load_checkpoint("opened") == head
    else:
        assert isinstance(projection, AsyncOpened)

        async def scenario() -> int:
            async with AsyncPostgresEventStore(app_dsn, schema=names["es"]) as store:
                subscription = AsyncSubscription(handler=projection, **OPTIONS)
                worker = AsyncSubscriptionWorker(store, subscription)
                await worker.run(until_caught_up=True)
                check_parked(await store.parked("opened"))
                assert await worker.retry_parked() == []
                assert await store.parked("opened") == []
                await worker.rebuild()
                head = await store.head()
                assert await store.load_checkpoint("opened") == head
                return head

        head = asyncio.run(scenario())
    assert head == 3
    assert opened_rows(app_dsn, projection) == ["ada", "poison", "zoe"]


def test_migration_4_gives_checkpointing_roles_the_dead_letter_rights(
    postgres_dsn: str, names: dict[str, str]
) -> None:
    """A database set up with the grants documented before (no rights on dead letters) is
    fixed by migrating: roles that may keep checkpoints can then park and retry events."""
    from esframework.postgres._schema import MIGRATIONS

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        for statement in statements(1, names):
            admin.execute(statement)
    owner_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_owner"])
    schema, app = names["es"], names["es_app"]
    dead_letters = f"{schema}.subscription_dead_letters"
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        versions = [m.version for m in MIGRATIONS if m.version < 4]
        owner.execute(
            sql.SQL(
                "CREATE TABLE {}.esframework_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
            ).format(sql.Identifier(schema))
        )
        for migration in MIGRATIONS[: len(versions)]:
            with owner.transaction():
                for statement in migration.statements:
                    owner.execute(
                        sql.SQL(statement).format(
                            schema=sql.Identifier(schema), schema_name=sql.Literal(schema)
                        )
                    )
                owner.execute(
                    sql.SQL("INSERT INTO {}.esframework_migrations VALUES (%s, %s)").format(
                        sql.Identifier(schema)
                    ),
                    (migration.version, migration.name),
                )
        for statement in statements(3, names):
            # The grants as they were (the tables of migration 6 do not exist yet).
            later = (
                "subscription_dead_letters",
                "events_archive",
                "stream_truncations",
                "personal_data_keys",
            )
            if not any(name in statement for name in later):
                owner.execute(statement)
        privilege = "SELECT has_table_privilege(%s, %s, 'DELETE')"
        assert owner.execute(privilege, (app, dead_letters)).fetchone() == (False,)
        applied = migrate(owner, schema)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS[len(versions) :]]
        for right in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            granted = owner.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (app, dead_letters, right)
            ).fetchone()
            assert granted == (True,), right
