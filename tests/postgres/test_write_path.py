"""The write path: writers that do not wait for each other, positions assigned after commit,
and what must survive a crash, a dump and restore, and an upgrade."""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from esframework import ConcurrencyError, ExpectedVersion, NewEvent, StoredEvent
from esframework.postgres import PostgresEventStore
from esframework.postgres._schema import MIGRATIONS
from tests.fixtures.cluster import Cluster
from tests.postgres.test_global_order import events


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@contextmanager
def unit_held_open(store: PostgresEventStore, stream_id: str, count: int) -> Iterator[None]:
    """Run a unit of work that appended `count` events to `stream_id` in another thread, and
    keep it open until the block ends."""
    opened, release = threading.Event(), threading.Event()

    def hold_open() -> None:
        with store.transaction():
            store.append(stream_id, "S", events(count), expected_version=0)
            opened.set()
            release.wait(30)

    holder = threading.Thread(target=hold_open)
    holder.start()
    try:
        assert opened.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_writers_go_on_while_a_unit_of_work_is_open(postgres_store: PostgresEventStore) -> None:
    """One unit of work is held open; other writers complete their appends meanwhile and a
    reader sees them, and the unit's events come after them once it commits."""
    done = threading.Event()

    def writer() -> None:
        for i in range(20):
            postgres_store.append(f"free-{i}", "S", events(1), expected_version=0)
        done.set()

    writing = threading.Thread(target=writer)
    with unit_held_open(postgres_store, "held", 2):
        writing.start()
        assert done.wait(30), "a writer waited for another writer's open transaction"
        assert len(postgres_store.read_all()) == 20  # readers do not wait for it either
    writing.join()
    stored = postgres_store.read_all()
    assert [e.stream_id for e in stored[-2:]] == ["held", "held"]
    assert [e.position for e in stored] == list(range(1, 23))


def test_an_append_to_a_stream_in_an_open_unit_waits_for_it(
    postgres_store: PostgresEventStore,
) -> None:
    """Only writers of the same stream wait: the loser of the version then fails cleanly."""
    outcome: list[BaseException] = []

    def rival() -> None:
        try:
            postgres_store.append("hot", "S", events(1), expected_version=0)
        except ConcurrencyError as error:
            outcome.append(error)

    racing = threading.Thread(target=rival)
    with unit_held_open(postgres_store, "hot", 1):
        racing.start()
        racing.join(0.5)
        assert racing.is_alive(), "the rival should wait for the open unit's stream"
    racing.join(10)
    assert len(outcome) == 1
    assert postgres_store.stream_version("hot") == 1


def test_events_committed_elsewhere_are_positioned_without_the_writer(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """An append committed by a process that died before positioning it (here: plain SQL)
    is positioned by any store's sweep, and at once by `sequence()`."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.events (id, stream_id, stream_type, event_type, event_data, "
                "version) VALUES (%s, 'orphan', 'S', 'Tick', '{{\"n\": 1}}', 1)"
            ).format(sql.Identifier(postgres_store.schema)),
            (uuid.uuid4(),),
        )
    assert postgres_store.unpositioned() == 1
    assert next(postgres_store.read_stream("orphan")).position == 0  # not yet positioned
    wait_for(lambda: len(postgres_store.read_all()) == 1)  # the sweep positioned it
    assert postgres_store.unpositioned() == 0
    assert postgres_store.sequence() == 0


def test_inserts_by_hand_follow_the_append_paths_rules(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """No insert may choose its global position or skip a version: such an event would be
    invisible to subscriptions, or a hole in a stream, forever."""
    postgres_store.append("s", "S", events(1), expected_version=0)
    table = sql.Identifier(postgres_store.schema, "events")
    insert = (
        "INSERT INTO {} (id, stream_id, stream_type, event_type, event_data, version"
        "{}) VALUES (%s, 's', 'S', 'Tick', '{{}}', %s{})"
    )
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RestrictViolation, match="global position"):
            conn.execute(
                sql.SQL(insert).format(table, sql.SQL(", global_position"), sql.SQL(", -1")),
                (uuid.uuid4(), 2),
            )
        with pytest.raises(psycopg.errors.RestrictViolation, match="no version 4"):
            conn.execute(sql.SQL(insert).format(table, sql.SQL(""), sql.SQL("")), (uuid.uuid4(), 5))
        for position in ("7", "NULL"):  # neither an unpositioned event nor a positioned one
            with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
                conn.execute(
                    sql.SQL("UPDATE {} SET global_position = {}").format(table, sql.SQL(position))
                )
    assert postgres_store.stream_version("s") == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [("event_data", '{"n": 2}'), ("stream_id", "other"), ("metadata", '{"x": 1}')],
)
def test_positioning_changes_nothing_but_the_position(
    postgres_store: PostgresEventStore, postgres_dsn: str, column: str, value: str
) -> None:
    """The sequencing mark lets an unpositioned event receive its position, and nothing else:
    a session that sets the mark itself still cannot rewrite the event."""
    table = sql.Identifier(postgres_store.schema, "events")
    event_id = uuid.uuid4()
    with psycopg.connect(postgres_dsn) as conn:  # one transaction: no pass can see the row
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, stream_id, stream_type, event_type, event_data, version) "
                "VALUES (%s, 'g', 'S', 'Tick', '{{\"n\": 1}}', 1)"
            ).format(table),
            (event_id,),
        )
        conn.execute("SET LOCAL esframework.sequencing = on")
        with (
            pytest.raises(psycopg.errors.RestrictViolation, match="append-only"),
            conn.transaction(),
        ):
            conn.execute(
                sql.SQL("UPDATE {} SET global_position = 999, {} = {} WHERE id = %s").format(
                    table, sql.Identifier(column), sql.Literal(value)
                ),
                (event_id,),
            )
        conn.execute(
            sql.SQL("UPDATE {} SET global_position = 999 WHERE id = %s").format(table), (event_id,)
        )
        conn.rollback()


@pytest.mark.parametrize("seed", range(2))
def test_units_of_work_with_rollbacks_keep_every_stream_in_order(
    postgres_store: PostgresEventStore, seed: int
) -> None:
    """Writers append to shared streams, half of them inside units of work that sleep and
    sometimes roll back, while a reader tails: every committed event once, nothing rolled
    back, each stream in version order."""
    rng = random.Random(seed)
    committed: set[uuid.UUID] = set()
    lock = threading.Lock()
    shared = [f"shared-{i}" for i in range(4)]

    def writer(n: int) -> None:
        for i in range(15):
            batch = events(1)
            own = events(rng.randint(1, 2))
            rolled_back = rng.random() < 0.2
            try:
                with postgres_store.transaction():
                    postgres_store.append(f"own-{n}-{i}", "S", own, expected_version=0)
                    target = rng.choice(shared)
                    postgres_store.append(target, "S", batch, expected_version=ExpectedVersion.ANY)
                    time.sleep(rng.random() * 0.01)
                    if rolled_back:
                        raise RuntimeError
            except (RuntimeError, ConcurrencyError):
                continue
            with lock:
                committed.update(e.event_id for e in own + batch)

    seen: list[StoredEvent] = []
    stop = threading.Event()

    def reader() -> None:
        after = 0
        while not stop.is_set() or (page := postgres_store.read_all(after=after)):
            page = postgres_store.read_all(after=after)
            seen.extend(page)
            after = page[-1].position if page else after
            time.sleep(0.002)

    tail = threading.Thread(target=reader)
    tail.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    tail.join()
    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids))
    assert set(ids) == committed
    versions: dict[str, int] = {}
    for e in seen:
        assert e.version == versions.get(e.stream_id, 0) + 1, e
        versions[e.stream_id] = e.version


def test_kill_9_of_the_server_loses_no_acknowledged_append(cluster: Cluster) -> None:
    """Writers append until the server is killed; after a restart every acknowledged
    append is there whole, none is there in part, and all get positions in order."""
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()

    def writer(n: int, store: PostgresEventStore) -> None:
        version = 0
        while not stop.is_set():
            try:
                version = store.append(f"w{n}", "S", events(3), expected_version=version).version
            except Exception:
                return
            acknowledged.append((f"w{n}", version))

    store = PostgresEventStore(cluster.dsn, schema="crash", reconnect_attempts=0)
    store.migrate()
    threads = [threading.Thread(target=writer, args=(n, store)) for n in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) > 40)
    cluster.kill()
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    cluster.start()
    with PostgresEventStore(cluster.dsn, schema="crash") as after:
        after.sequence()
        stored = after.read_all(limit=100_000)
    heads: dict[str, int] = {}
    for e in stored:
        assert e.version == heads.get(e.stream_id, 0) + 1
        heads[e.stream_id] = e.version
    assert all(version % 3 == 0 for version in heads.values()), "a partial append"
    for stream, version in acknowledged:
        assert heads[stream] >= version, f"acknowledged {stream}@{version} was lost"
    # Numbering after the restart may skip the positions the crash could have taken back
    # from readers (see test_lost_passes.py): increasing, not gap-free.
    found = [e.position for e in stored]
    assert found == sorted(set(found))


def test_positions_survive_a_dump_and_restore(cluster: Cluster) -> None:
    """Restored, the store keeps every position, and new appends come after them."""
    with PostgresEventStore(cluster.dsn, schema="es") as store:
        store.migrate()
        for i in range(5):
            store.append(f"s{i}", "S", events(2), expected_version=0)
        before = store.read_all()
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE restored")
    dump = subprocess.run(
        [str(cluster.bin / "pg_dump"), "--dbname", cluster.dsn, "--schema", "es"],
        capture_output=True,
        check=True,
    ).stdout
    restored_dsn = cluster.dsn.rsplit("/", 1)[0] + "/restored"
    subprocess.run(
        [str(cluster.bin / "psql"), "--dbname", restored_dsn, "-v", "ON_ERROR_STOP=1", "-q"],
        input=dump,
        capture_output=True,
        check=True,
    )
    with PostgresEventStore(restored_dsn, schema="es") as store:
        assert store.read_all() == before
        store.append("s0", "S", events(1), expected_version=2)
        store.append("new", "S", events(1), expected_version=0)
        after = store.read_all(after=before[-1].position)
    assert [(e.stream_id, e.position) for e in after] == [("s0", 11), ("new", 12)]


def test_a_database_of_the_previous_version_migrates_forward(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Events written before migration 3 keep their positions; later ones follow them."""
    name = sql.Identifier(postgres_schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.esframework_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
            ).format(name)
        )
        for migration in MIGRATIONS[:2]:
            for statement in migration.statements:
                conn.execute(
                    sql.SQL(statement).format(schema=name, schema_name=sql.Literal(postgres_schema))
                )
            conn.execute(
                sql.SQL("INSERT INTO {}.esframework_migrations VALUES (%s, %s)").format(name),
                (migration.version, migration.name),
            )
        for version in (1, 2, 3):  # as the previous version appended: positions at insert
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.events (id, stream_id, stream_type, event_type, event_data, "
                    "version) VALUES (%s, 'old', 'S', 'Tick', '{{\"n\": 1}}', %s)"
                ).format(name),
                (uuid.uuid4(), version),
            )
    with PostgresEventStore(postgres_dsn, schema=postgres_schema) as store:
        assert store.migrate() == [migration.name for migration in MIGRATIONS[2:]]
        old = store.read_all()
        assert [(e.version, e.position) for e in old] == [(1, 1), (2, 2), (3, 3)]
        store.append("old", "S", events(1), expected_version=3)
        store.append("new", "S", events(1), expected_version=0)
        stored = store.read_all()
    assert [(e.stream_id, e.version, e.position) for e in stored[3:]] == [
        ("old", 4, 4),
        ("new", 1, 5),
    ]


def test_new_event_ids_are_idempotent_across_a_unit_of_work(
    postgres_store: PostgresEventStore,
) -> None:
    """A unit of work retried after it committed (its answer lost) writes nothing again."""
    first: list[NewEvent] = events(1)
    second: list[NewEvent] = events(1)
    for _ in range(2):
        with postgres_store.transaction():
            postgres_store.append("a", "S", first, expected_version=0)
            postgres_store.append("b", "S", second, expected_version=0)
    assert [e.stream_id for e in postgres_store.read_all()] == ["a", "b"]


def test_stores_sharing_passes_read_their_own_writes_and_miss_nothing(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Four stores (four sequencers) append at once, so most commits find another store's
    pass running and rely on the next pass instead of running their own: each store still
    reads its own append right after it, and a reader sees every event once, streams in
    version order."""
    with PostgresEventStore(postgres_dsn, schema=postgres_schema) as setup:
        setup.migrate()
    failures: list[str] = []

    def write(writer: int) -> None:
        with PostgresEventStore(postgres_dsn, schema=postgres_schema) as store:
            seen = 0
            for version in range(1, 41):
                batch = events(1)
                store.append(f"w{writer}", "S", batch, expected_version=version - 1)
                ids = {e.event_id for e in store.read_all(after=seen, limit=10_000)}
                if batch[0].event_id not in ids:
                    failures.append(f"w{writer} v{version}: own append not read back")
                seen = store.head()

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    assert failures == []
    with PostgresEventStore(postgres_dsn, schema=postgres_schema) as reader:
        stored = reader.read_all(limit=10_000)
    assert [e.position for e in stored] == list(range(1, 161))
    for writer in range(4):
        versions = [e.version for e in stored if e.stream_id == f"w{writer}"]
        assert versions == list(range(1, 41))


def test_a_waiting_pass_skips_its_work_when_a_later_pass_did_it(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """A pass that waited for the lock does nothing (and says so) once two passes more
    committed: the second began after it asked, so it saw everything the asker committed."""
    schema = postgres_store.schema
    lock = f"esframework sequence {schema}"
    table = sql.Identifier(schema, "esframework_sequencer")
    with psycopg.connect(postgres_dsn) as holder, psycopg.connect(postgres_dsn) as asker:
        holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
        answer: list[int] = []
        waiting = threading.Thread(
            target=lambda: answer.append(
                asker.execute(
                    sql.SQL("SELECT {}.esframework_sequence(100, true)").format(
                        sql.Identifier(schema)
                    )
                ).fetchone()[0]  # type: ignore[index]
            )
        )
        waiting.start()
        wait_for(
            lambda: (
                holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()[0]  # type: ignore[index]
                == 1
            )
        )
        holder.execute(sql.SQL("UPDATE {} SET passes = passes + 2").format(table))
        holder.commit()  # as if two passes had run while the asker waited
        waiting.join(10)
        assert answer == [-2]


def test_a_read_does_not_wait_for_passes_held_back_for_batching(
    postgres_store: PostgresEventStore,
) -> None:
    """Passes are held back while appends keep coming, but a read of the store's own writes
    has its pass run at once: with passes held back half a minute, each read still gets the
    append just made (the read would otherwise give up after 10 s, without it)."""
    postgres_store._sequencer.batch_interval = 30.0
    for version in range(1, 4):
        batch = events(1)
        postgres_store.append("b", "S", batch, expected_version=version - 1)
        assert batch[0].event_id in {e.event_id for e in postgres_store.read_all()}


def test_a_backlog_larger_than_a_pass_is_positioned_in_insert_order(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """12,000 events inserted while no store ran (an import, an outage) are positioned by
    passes of 5,000, in the order they were inserted. A cached generic plan of the pass made
    each such pass walk the whole backlog per row (12 s and more per pass): passes run on
    the same connection here, after enough small ones for PostgreSQL to cache a plan, and a
    statement timeout far above a sound pass's time fails such a pass."""
    events_table = sql.Identifier(postgres_schema, "events")
    with PostgresEventStore(
        postgres_dsn, schema=postgres_schema, max_size=1, statement_timeout=5.0
    ) as store:
        store.migrate()
        for version in range(1, 8):  # small passes on the store's one connection
            store.append("warm", "S", events(1), expected_version=version - 1)
            store.sequence()
            if version == 2:  # statistics of a young table, as autovacuum would take them
                with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("ANALYZE {}").format(events_table))
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, stream_id, stream_type, event_type, event_data, version) "
                    "SELECT gen_random_uuid(), 'import-' || n, 'S', 'Tick', '{{}}', 1 "
                    "FROM generate_series(1, 12000) AS n"
                ).format(events_table)
            )
        store.sequence()  # (the store's sweep may have begun on them already)
        assert store.unpositioned() == 0
        imported = store.read_all(after=7, limit=20_000)
    assert [e.stream_id for e in imported] == [f"import-{n}" for n in range(1, 12_001)]
    assert [e.position for e in imported] == list(range(8, 12_008))
