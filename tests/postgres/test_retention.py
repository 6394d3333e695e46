"""PostgreSQL only: the database enforces closing and archiving for every writer, and the
archiving pass keeps positions, subscriptions and rights right."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from esframework import (
    Envelope,
    NewEvent,
    Repository,
    SnapshotRecord,
    Subscription,
    SubscriptionWorker,
)
from esframework.postgres import MIGRATIONS, PostgresEventStore, migrate
from tests.domain import Wallet
from tests.postgres.test_roles import set_up, statements
from tests.stores.test_contract import make


def _sql(store: PostgresEventStore, statement: str, *params: Any) -> list[Any]:
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        composed = sql.SQL(statement).format(s=sql.Identifier(store.schema))
        cursor = conn.execute(composed, params)
        return cursor.fetchall() if cursor.description else []


_INSERT = (
    "INSERT INTO {s}.events (id, stream_id, stream_type, event_type, event_data, version) "
    "VALUES (%s, %s, 'S', 'Happened', '{{}}', %s)"
)


def test_the_insert_check_refuses_events_after_a_tombstone(
    postgres_store: PostgresEventStore,
) -> None:
    """An insert by hand after a tombstone fails in the database, naming the stream."""
    postgres_store.append("s", "S", make(2), expected_version=0)
    postgres_store.tombstone("s", expected_version=2)
    with pytest.raises(psycopg.errors.RestrictViolation, match="closed") as caught:
        _sql(postgres_store, _INSERT, uuid.uuid4(), "s", 4)
    assert caught.value.diag.constraint_name == "stream_closed"
    assert "stream s, version 4" in str(caught.value)


def test_the_insert_check_keeps_archived_ids_taken(postgres_store: PostgresEventStore) -> None:
    """An insert by hand of an archived event's id fails as a duplicate primary key."""
    events = make(3)
    postgres_store.append("s", "S", events, expected_version=0)
    postgres_store.tombstone("s", expected_version=3)
    assert postgres_store.archive() == 3
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        _sql(postgres_store, _INSERT, events[0].event_id, "other", 1)
    assert caught.value.diag.constraint_name == "events_pkey"


def test_archiving_waits_for_the_truncation_point_to_be_positioned(
    postgres_store: PostgresEventStore,
) -> None:
    """Events stay until the event at their stream's truncation point has a position, so
    the highest position in `events` is never archived."""
    postgres_store.append("s", "S", make(4), expected_version=0)
    postgres_store.head()  # positioned
    with psycopg.connect(postgres_store.conninfo) as holder:  # no pass runs meanwhile
        holder.execute(
            "SELECT pg_advisory_xact_lock(hashtext('esframework sequence ' || %s))",
            (postgres_store.schema,),
        )
        _sql(postgres_store, _INSERT, uuid.uuid4(), "s", 5)  # committed, not positioned
        postgres_store.save_snapshot(
            SnapshotRecord(stream_id="s", stream_type="S", state_schema="x", version=5, data="{}")
        )
        postgres_store.truncate_before("s", 5)
        assert postgres_store.archivable() == 4
        assert postgres_store.archive() == 0
    postgres_store.sequence()
    assert postgres_store.archive() == 4
    positions = [e.position for e in postgres_store.read_all()]
    assert positions == [1, 2, 3, 4, 5]
    postgres_store.append("s", "S", make(1), expected_version=5)
    assert postgres_store.read_all(after=5)[0].position == 6  # numbered after the archive


def test_one_archiving_pass_at_a_time(postgres_store: PostgresEventStore) -> None:
    """While another pass holds the archiving lock, a pass returns -1 and moves nothing."""
    postgres_store.append("s", "S", make(2), expected_version=0)
    postgres_store.tombstone("s", expected_version=2)
    with psycopg.connect(postgres_store.conninfo) as holder:
        holder.execute(
            "SELECT pg_advisory_xact_lock(hashtext('esframework archive ' || %s))",
            (postgres_store.schema,),
        )
        assert postgres_store.archive() == -1
    assert postgres_store.archive() == 2


def test_a_subscription_catching_up_while_archiving_runs_misses_nothing(
    postgres_store: PostgresEventStore,
) -> None:
    """A worker pages through the global order while passes move its unread events to the
    archive: it receives every event once, in order."""
    wallets = Repository(Wallet, store=postgres_store)
    for number in range(40):
        wallet = Wallet.open(f"w{number}", "Ada")
        for amount in range(1, 20):
            wallet.add(Decimal(amount))
        wallets.save(wallet, snapshot=True)  # versions 1..20, snapshot at 20
        postgres_store.truncate_before(f"w{number}", 20)
    everything = [e.position for e in postgres_store.iter_all()]
    seen: list[int] = []
    archived_some = threading.Event()

    def handle(envelope: Envelope[Any], _: object) -> None:
        seen.append(envelope.position)
        if len(seen) == 50:  # mid-way: let a pass move events the worker has not read
            assert archived_some.wait(30)

    def archive() -> None:
        while postgres_store.archive(max_events=97) > 0:
            archived_some.set()

    worker = SubscriptionWorker(
        postgres_store, Subscription(name="reader", handler=handle, batch_size=25)
    )
    archiver = threading.Thread(target=archive)
    archiver.start()
    worker.run(until_caught_up=True)
    archiver.join()
    assert seen == everything
    assert postgres_store.archivable() == 0


def test_migration_6_gives_appending_roles_the_archive_rights(
    postgres_dsn: str, names: dict[str, str]
) -> None:
    """A database set up before migration 6 is fixed by migrating: a role that may append
    reads the archive and records truncations."""
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        for statement in statements(1, names):
            admin.execute(statement)
    owner_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=names["es_owner"])
    schema, app = names["es"], names["es_app"]
    before = [m for m in MIGRATIONS if m.version < 6]
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        owner.execute(
            sql.SQL(
                "CREATE TABLE {}.esframework_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
            ).format(sql.Identifier(schema))
        )
        for migration in before:
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
            later = ("events_archive", "stream_truncations", "personal_data_keys")
            if not any(table in statement for table in later):
                owner.execute(statement)
        migrate(owner, schema)
        check = "SELECT has_table_privilege(%s, %s, %s)"
        for table, right in (
            ("events_archive", "SELECT"),
            ("stream_truncations", "SELECT"),
            ("stream_truncations", "INSERT"),
            ("stream_truncations", "UPDATE"),
            # Migration 7 does the same for the keys of data subjects.
            ("personal_data_keys", "SELECT"),
            ("personal_data_keys", "INSERT"),
            ("personal_data_keys", "UPDATE"),
        ):
            granted = owner.execute(check, (app, f"{schema}.{table}", right)).fetchone()
            assert granted == (True,), (table, right)
        for table, right in (
            ("events_archive", "INSERT"),
            ("events_archive", "DELETE"),
            ("personal_data_keys", "DELETE"),
        ):
            granted = owner.execute(check, (app, f"{schema}.{table}", right)).fetchone()
            assert granted == (False,), (table, right)


def test_the_application_role_closes_truncates_and_archives(
    postgres_dsn: str, names: dict[str, str]
) -> None:
    """With the documented grants, the application role closes and truncates streams and
    runs archiving passes (with the owner's rights), but cannot write the archive itself."""
    app_dsn = set_up(postgres_dsn, names)
    with PostgresEventStore(app_dsn, schema=names["es"]) as store:
        wallets = Repository(Wallet, store=store)
        wallet = Wallet.open("w", "Ada")
        wallet.add(Decimal(5))
        wallets.save(wallet, snapshot=True)
        store.truncate_before("w", 2)
        wallets.tombstone(Wallet.open("gone", "Bo"))
        assert store.archive() == 2
        assert wallets.load("w").balance == Decimal(5)
        assert len(store.read_all()) == 4
        events = make(1)
        store.append("x", "S", events, expected_version=0)
    archive = sql.Identifier(names["es"], "events_archive")
    with psycopg.connect(app_dsn, autocommit=True) as app:
        for forbidden in ("DELETE FROM {}", "UPDATE {} SET version = 9", "TRUNCATE {}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql.SQL(forbidden).format(archive))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    archive, sql.Identifier(names["es"], "events")
                )
            )


def test_new_event_with_tombstone_type_closes_like_tombstone(
    postgres_store: PostgresEventStore,
) -> None:
    """An appended event of the reserved type closes its stream however it was made."""
    postgres_store.append("s", "S", make(1), expected_version=0)
    marker = NewEvent(uuid.uuid4(), "$StreamClosed", 1, "{}")
    postgres_store.append("s", "S", [marker], expected_version=1)
    assert [e.version for e in postgres_store.read_stream("s")] == [2]
    rows = _sql(postgres_store, "SELECT before_version FROM {s}.stream_truncations")
    assert rows == [(2,)]
