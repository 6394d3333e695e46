"""Every SQL statement the PostgreSQL stores run, named once, for one schema.

Shared by the sync and async stores: they differ only in how they run these. The statements
that set a connection up (its name, timeouts, search path) are in `_connection_setup.py`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final, LiteralString
from uuid import UUID

import orjson
from psycopg import sql

from esframework._queries import AppendCondition, Query, QueryItem
from esframework._records import NewEvent, SnapshotRecord, StoredEvent

__all__ = ["Statements", "append_params", "to_stored"]

MAX_VALUES_ROWS: Final = 16
"""Appends of up to this many events bind scalars; larger ones bind arrays."""

EVENT_COLUMNS: Final = (
    "id, stream_id, stream_type, event_type, schema_version, event_data, metadata, "
    "version, coalesce(global_position, 0), created_at, tags"
)
"""A stream read can meet a committed event the sequencer has not positioned yet: 0."""


_PAYLOAD_COLUMNS: Final = (
    "stream_id, version, coalesce(global_position, 0), event_type, schema_version, event_data, "
    "stream_type"
)

# Both tables' rows with the columns reads need, for reads that merge the archive in.
_BOTH_TABLES: Final = (
    "SELECT id, stream_id, stream_type, event_type, schema_version, event_data, metadata, "
    "version, global_position, created_at, tags FROM {s}.events UNION ALL "
    "SELECT id, stream_id, stream_type, event_type, schema_version, event_data, metadata, "
    "version, global_position, created_at, tags FROM {s}.events_archive"
)

# A stream's truncation point, or NULL (migration 6).
_CUT: Final = "SELECT before_version FROM {s}.stream_truncations WHERE stream_id = %(id)s"


def to_stored(row: Sequence[Any]) -> StoredEvent:
    """Map a row of `EVENT_COLUMNS` (in `StoredEvent`'s field order) to a record."""
    return StoredEvent._make((*row[:10], tuple(row[10])))


SEQUENCE_BATCH: Final = 5000
"""The most events one sequencing pass positions."""

BUSY: Final = -1
"""What a sequencing pass that does not wait returns when another pass holds the lock."""

COVERED: Final = -2
"""What a waiting sequencing pass returns when another pass, begun after it asked, did its
work (migration 4)."""


@functools.lru_cache(maxsize=4096)
def dcb_key(schema: str, kind: str, name: str) -> int:
    """The advisory lock key of a tag, an event type or (kind "store") the whole store."""
    digest = hashlib.sha256(f"esframework dcb {schema} {kind} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def dcb_locks(
    schema: str,
    events: Sequence[NewEvent],
    condition: AppendCondition | None,
    own: Sequence[UUID] = (),
) -> list[Any]:
    """The parameters of an append's `dcb` step: what it locks, and how.

    Every append locks, shared, the store's key and the key of each of its events' types and
    tags. A conditional append also locks, exclusively, for each item of its query: the key
    of one of the item's tags (a matching event carries them all, so its append holds that
    key too), or else of each of its types, or else the store's key. Keys go in one sorted
    order, a key wanted both ways exclusively, so single appends never deadlock.

    `own`: the ids of the events of the open unit of work that its decision's read returned
    (unpositioned till the unit commits): the check passes over them (migration 9).
    """
    shared = {dcb_key(schema, "store", "")}
    for e in events:
        shared.add(dcb_key(schema, "type", e.event_type))
        shared.update(dcb_key(schema, "tag", tag) for tag in e.tags)
    if condition is None:
        return [sorted(shared)]
    query = condition.fail_if_events_match
    exclusive: set[int] = set()
    items = query.items or (QueryItem(),)
    for item in items:
        if item.tags:
            exclusive.add(dcb_key(schema, "tag", min(item.tags)))
        elif item.types:
            exclusive.update(dcb_key(schema, "type", name) for name in item.types)
        else:
            exclusive.add(dcb_key(schema, "store", ""))
    keys = sorted(shared | exclusive)
    checked = [{"tags": sorted(i.tags), "types": sorted(i.types)} for i in items]
    after = -1 if condition.after is None else condition.after
    return [keys, [k in exclusive for k in keys], orjson.dumps(checked).decode(), after, list(own)]


def stream_lock_key(schema: str, stream_id: str) -> int:
    """The advisory lock key that appends expecting any version of one stream queue on."""
    digest = hashlib.sha256(f"esframework stream {schema} {stream_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Statements:
    """The statements for one schema, composed once."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        name = sql.Identifier(schema)

        def q(text: LiteralString) -> bytes:
            # Rendered once: psycopg would otherwise compose the query again on every call.
            return sql.SQL(text).format(s=name, columns=sql.SQL(EVENT_COLUMNS)).as_bytes(None)

        # One statement, one round trip, and no lock: the append checks the expected version
        # and inserts every event without a global position. Positions are assigned after
        # commit, in insert order, by a sequencing pass (`sequence` below), so no writer
        # waits for another's commit, and a late commit gets a later position instead of
        # one a reader has already passed. (The version check reads the statement's
        # snapshot; the unique (stream_id, version) constraint catches what a concurrent
        # append took meanwhile.)
        # The head is the stream's last event, read with one probe of that constraint's
        # index: its version, and its stream type, which every event of a stream shares. An
        # append whose stream type differs inserts nothing, like one at a stale version; the
        # store then reads `stream_head` to say which check failed.
        head = """
            head AS (
                SELECT coalesce(max(version), 0) AS version, max(stream_type) AS stream_type
                FROM (SELECT version, stream_type FROM {s}.events WHERE stream_id = %s
                      ORDER BY version DESC LIMIT 1) AS last_event
            )"""
        insert = """
            INSERT INTO {s}.events (id, stream_id, stream_type, event_type, schema_version,
                                    event_data, metadata, version, tags)
            SELECT e.id, %s, %s, e.event_type, e.schema_version, e.event_data, e.metadata,
                   head.version + e.n, e.tags
            """
        # Every append holds shared locks on the keys of its tags, its event types and the
        # store (`dcb_keys`), to its commit; a conditional append takes its query's keys
        # exclusively, and checks its condition, in migration 9's function (see there).
        # Both are folded into the insert: no extra round trip.
        locks = """
            dcb AS (SELECT count(pg_advisory_xact_lock_shared(k))
                    FROM unnest(%s::bigint[]) AS k),"""
        condition = """
            dcb AS (SELECT {s}.esframework_condition(
                %s::bigint[], %s::boolean[], %s::jsonb, %s::bigint, %s::uuid[])),"""
        self._append_heads = {
            conditional: "WITH" + (condition if conditional else locks) + head + insert
            for conditional in (False, True)
        }
        # Appends expecting any version also queue on their stream's advisory lock, so that
        # on a busy stream they lose a race for a version at most once (see the store).
        self._stream_lock = "WITH stream_lock AS (SELECT pg_advisory_xact_lock(%s::bigint)),"
        self._append_tail = """
            WHERE (%s::bigint IS NULL OR head.version = %s::bigint)
              AND (head.stream_type IS NULL OR head.stream_type = %s::text)
            ORDER BY e.n
            RETURNING version
            """
        self._append_by_count: dict[tuple[int, bool, bool], bytes] = {}
        self._read_query: dict[tuple[tuple[bool, ...], bool, bool], bytes] = {}
        self._name = name
        # Archived events keep their ids: a retry of one finds it there (migration 6).
        self.by_ids = q(
            "SELECT {columns} FROM {s}.events WHERE id = ANY(%(ids)s) UNION ALL "
            "SELECT {columns} FROM {s}.events_archive WHERE id = ANY(%(ids)s)"
        )
        # Stream reads start at the stream's truncation point (a NULL is ignored by
        # greatest: an untruncated stream reads from `from_version`); the `archived`
        # variants read both tables from `from_version`, merged by version.
        self.read_payloads = q(
            "SELECT " + _PAYLOAD_COLUMNS + " FROM {s}.events "
            "WHERE stream_id = %(id)s AND version >= greatest(%(first)s::bigint, (" + _CUT + ")) "
            "AND version <= %(last)s ORDER BY version LIMIT %(limit)s"
        )
        self.read_archived_payloads = q(
            "SELECT " + _PAYLOAD_COLUMNS + " FROM (" + _BOTH_TABLES + ") AS e "
            "WHERE stream_id = %(id)s AND version >= %(first)s AND version <= %(last)s "
            "ORDER BY version LIMIT %(limit)s"
        )
        self.stream_version = q(
            "SELECT coalesce(max(version), 0) FROM {s}.events WHERE stream_id = %s"
        )
        # After an append inserted nothing: the stream's version and type (no row: new).
        self.stream_head = q(
            "SELECT version, stream_type, event_type FROM {s}.events WHERE stream_id = %s "
            "ORDER BY version DESC LIMIT 1"
        )
        self.read_stream = q(
            "SELECT {columns} FROM {s}.events "
            "WHERE stream_id = %(id)s AND version >= greatest(%(first)s::bigint, (" + _CUT + ")) "
            "AND version <= %(last)s ORDER BY version LIMIT %(limit)s"
        )
        self.read_archived_stream = q(
            "SELECT {columns} FROM (" + _BOTH_TABLES + ") AS e "
            "WHERE stream_id = %(id)s AND version >= %(first)s AND version <= %(last)s "
            "ORDER BY version LIMIT %(limit)s"
        )
        # The global order holds archived events too: the planner merges the two tables'
        # position indexes (a Merge Append), so a page costs one more index probe.
        self._read_all = {
            (by_stream, by_event): q(
                "SELECT {columns} FROM (" + _BOTH_TABLES + ") AS e "
                "WHERE global_position > %(after)s"
                + (" AND stream_type = ANY(%(stream_types)s)" if by_stream else "")
                + (" AND event_type = ANY(%(event_types)s)" if by_event else "")
                + " ORDER BY global_position LIMIT %(limit)s"
            )
            for by_stream in (False, True)
            for by_event in (False, True)
        }
        self.head = q("SELECT coalesce(max(global_position), 0) FROM {s}.events")
        # As of a time: up to the first event recorded after it (the stream's, or the
        # global order's), or all of it.
        # The archived events too: the first event after the time may be one of them (the
        # stream's last event, and the highest position, never leave `events`).
        self.version_at = q(
            "SELECT coalesce(least("
            "(SELECT min(version) FROM {s}.events "
            "WHERE stream_id = %(stream)s AND created_at > %(as_of)s), "
            "(SELECT min(version) FROM {s}.events_archive "
            "WHERE stream_id = %(stream)s AND created_at > %(as_of)s)) - 1, "
            "(SELECT coalesce(max(version), 0) FROM {s}.events WHERE stream_id = %(stream)s))"
        )
        self.position_at = q(
            "SELECT coalesce(least("
            "(SELECT min(global_position) FROM {s}.events "
            "WHERE created_at > %(as_of)s AND global_position IS NOT NULL), "
            "(SELECT min(global_position) FROM {s}.events_archive "
            "WHERE created_at > %(as_of)s)) - 1, "
            "(SELECT coalesce(max(global_position), 0) FROM {s}.events))"
        )
        # One sequencing pass (migration 3's function): -1 if another pass holds the lock.
        self.sequence = q("SELECT {s}.esframework_sequence(%s, %s)")
        self.unpositioned = q("SELECT count(*) FROM {s}.events WHERE global_position IS NULL")
        # A loose index scan over idx_events_event_type: one index probe per distinct name.
        self.stored_event_types = q(
            """
            WITH RECURSIVE names(name) AS (
                SELECT min(event_type) FROM {s}.events
                UNION ALL
                SELECT (SELECT min(event_type) FROM {s}.events WHERE event_type > names.name)
                FROM names WHERE names.name IS NOT NULL
            ), archived(name) AS (
                SELECT min(event_type) FROM {s}.events_archive
                UNION ALL
                SELECT (SELECT min(event_type) FROM {s}.events_archive
                        WHERE event_type > archived.name)
                FROM archived WHERE archived.name IS NOT NULL
            )
            SELECT name FROM names WHERE name IS NOT NULL
            UNION SELECT name FROM archived WHERE name IS NOT NULL
            """
        )
        self.load_snapshot = q(
            "SELECT stream_type, state_schema, version, snapshot_data "
            "FROM {s}.snapshots WHERE stream_id = %s"
        )
        # An older snapshot (from a slower writer) never replaces a newer one.
        self.save_snapshot = q(
            """
            INSERT INTO {s}.snapshots AS old (stream_id, stream_type, snapshot_data, version,
                                              state_schema)
            VALUES (%s, %s, %s::jsonb, %s, %s)
            ON CONFLICT (stream_id) DO UPDATE SET
                stream_type = excluded.stream_type, snapshot_data = excluded.snapshot_data,
                version = excluded.version, state_schema = excluded.state_schema,
                created_at = now()
            WHERE excluded.version >= old.version
            """
        )

        self.load_checkpoint = q(
            "SELECT last_position FROM {s}.subscription_checkpoints WHERE subscription_id = %s"
        )
        # Fenced twice: the checkpoint moves only while the lease's session holds its lock,
        # and only from the position this instance last saw (a compare-and-set, which READ
        # COMMITTED re-checks after waiting for another writer's row lock). An instance that
        # lost its lease between the two checks still cannot commit over the new holder.
        self.save_checkpoint = q(
            """
            INSERT INTO {s}.subscription_checkpoints AS cp
                (subscription_id, last_position, updated_at)
            SELECT %(name)s, %(position)s, now()
            WHERE %(pid)s::int IS NULL OR EXISTS (
                SELECT FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND pid = %(pid)s::int
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND classid::bigint = %(key_high)s AND objid::bigint = %(key_low)s
                  AND objsubid = 1
            )
            ON CONFLICT (subscription_id) DO UPDATE
            SET last_position = excluded.last_position, updated_at = excluded.updated_at
            WHERE cp.last_position IS NOT DISTINCT FROM %(previous)s::bigint
            """
        )
        self.park = q(
            """
            INSERT INTO {s}.subscription_dead_letters
                (subscription_id, global_position, event_id, stream_id, event_type, error)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (subscription_id, global_position) DO UPDATE
            SET error = excluded.error, parked_at = now()
            """
        )
        self.unpark = q(
            "DELETE FROM {s}.subscription_dead_letters WHERE subscription_id = %(name)s "
            "AND (%(position)s::bigint IS NULL OR global_position = %(position)s::bigint)"
        )
        # FOR SHARE: a retry deleting one of these entries is waited for (see the caller).
        self.parked_streams = q(
            "SELECT stream_id FROM {s}.subscription_dead_letters WHERE subscription_id = %s "
            "AND stream_id = ANY(%s) FOR SHARE"
        )
        self.parked = q(
            "SELECT subscription_id, global_position, event_id, stream_id, event_type, error, "
            "parked_at FROM {s}.subscription_dead_letters WHERE subscription_id = %s "
            "ORDER BY global_position"
        )

        self._retention(q)
        self._personal_keys(q)

    def _retention(self, q: Callable[[LiteralString], bytes]) -> None:
        """Truncating and archiving streams (migration 6)."""
        self.snapshot_version = q("SELECT version FROM {s}.snapshots WHERE stream_id = %s")
        # A truncation point never moves back.
        self.truncate = q(
            """
            INSERT INTO {s}.stream_truncations AS t (stream_id, before_version)
            VALUES (%s, %s)
            ON CONFLICT (stream_id) DO UPDATE
            SET before_version = excluded.before_version, truncated_at = now()
            WHERE excluded.before_version > t.before_version
            """
        )
        # One archiving pass (migration 6's function): -1 if another pass holds the lock.
        self.archive = q("SELECT {s}.esframework_archive(%s)")
        # Versions are contiguous: the gaps between the archived parts and the truncation
        # points count the events waiting.
        self.archivable = q(
            "SELECT coalesce(sum(before_version - archived_before), 0) "
            "FROM {s}.stream_truncations WHERE archived_before < before_version"
        )

    def _personal_keys(self, q: Callable[[LiteralString], bytes]) -> None:
        """The keys of data subjects (migration 7)."""
        self.personal_keys = q(
            "SELECT subject, key FROM {s}.personal_data_keys WHERE subject = ANY(%s)"
        )
        # Concurrent creators of one key: the loser's insert does nothing, and the key it
        # then reads (in a later statement, which sees the winner's commit) is the winner's.
        self.create_personal_keys = q(
            "INSERT INTO {s}.personal_data_keys (subject, key) "
            "SELECT * FROM unnest(%s::varchar[], %s::bytea[]) ON CONFLICT (subject) DO NOTHING"
        )
        self.purge_keys = q("VACUUM (FULL, VERBOSE) {s}.personal_data_keys")
        self.forget_subject = q(
            """
            INSERT INTO {s}.personal_data_keys AS k (subject, key, forgotten_at)
            VALUES (%s, NULL, now())
            ON CONFLICT (subject) DO UPDATE
            SET key = NULL, forgotten_at = coalesce(k.forgotten_at, excluded.forgotten_at)
            """
        )

    def append(self, count: int, *, any_version: bool = False, conditional: bool = False) -> bytes:
        """Return the append statement for `count` events.

        Small appends (the common case) bind each value as a scalar: psycopg dumps those far
        faster than arrays. Large ones pass one array per column (tags as JSON texts).
        """
        count = min(count, MAX_VALUES_ROWS + 1)  # every larger append shares one statement
        query = self._append_by_count.get((count, any_version, conditional))
        if query is None:
            columns = "id, event_type, schema_version, event_data, metadata, tags, n"
            if count <= MAX_VALUES_ROWS:
                row = "(%s::uuid, %s::text, %s::int, %s::jsonb, %s::jsonb, %s::text[], {n})"
                rows = ", ".join(row.format(n=n) for n in range(1, count + 1))
                source = f"(VALUES {rows}) AS e({columns})"
            else:
                source = (
                    "(SELECT u.id, u.event_type, u.schema_version, u.event_data, u.metadata, "
                    "ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)) AS tags, u.n "
                    "FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::jsonb[], %s::jsonb[], "
                    f"%s::text[]) WITH ORDINALITY AS u({columns})) AS e"
                )
            head = self._append_heads[conditional]
            if any_version:
                head = self._stream_lock + head.removeprefix("WITH")
            sources = "FROM stream_lock, dcb, head, " if any_version else "FROM dcb, head, "
            text = head + sources + source + self._append_tail
            query = sql.SQL(text).format(s=self._name).as_bytes(None)
            self._append_by_count[count, any_version, conditional] = query
        return query

    def read_query(
        self, query: Query, after: int, limit: int | None
    ) -> tuple[bytes, dict[str, Any], bool | None]:
        """Return the statement reading `query`'s events after `after`, its parameters, and
        whether it may be prepared (None: psycopg decides, as for every statement).

        Its rows start with the head the read saw (the highest position in its snapshot);
        with no match, one row holds the head and no event. One statement per shape of
        query (how many tagged items, which with types, and whether untagged ones come
        too), composed once.

        Tagged items are matched first, through the GIN indexes alone, into a materialized
        step, and only then filtered by position and ordered: psycopg prepares statements
        after a few runs, and a generic plan that may also walk the position index (for
        the order, or to AND it into the bitmap) read all 100,000 events of the benchmark
        instead of the ~110 of the query, 10 to 100 times slower (and with stale
        statistics, a bitmap ANDed the type index in: `IS TRUE` keeps the type test out of
        the index conditions). Tags name few events;
        types may name many, so untagged items read in position order, up to the limit; a
        generic plan cannot tell a rare type from a common one (it walked every position
        for a type with no events, 30 ms instead of 4), so those statements are planned
        for their values each time, never prepared.
        """
        items = () if query.is_all else query.items
        tagged = [i for i in items if i.tags]
        typed = sorted({t for i in items if not i.tags for t in i.types})
        shape = (tuple(bool(i.types) for i in tagged), bool(typed), not items)
        statement = self._read_query.get(shape)
        if statement is None:
            ordered = (
                "(SELECT e.* FROM (" + _BOTH_TABLES + ") AS e WHERE e.global_position > %(after)s"
                "{where} ORDER BY e.global_position LIMIT %(limit)s)"
            )
            steps = ["h AS (SELECT coalesce(max(global_position), 0) AS head FROM {s}.events)"]
            parts = []
            if tagged:
                tests = [
                    f"(e.tags @> %(t{n})s::text[]"
                    + (f" AND (e.event_type = ANY(%(y{n})s::text[])) IS TRUE)" if types else ")")
                    for n, types in enumerate(shape[0])
                ]
                steps.append(
                    "tagged AS MATERIALIZED (SELECT e.* FROM (" + _BOTH_TABLES + ") AS e "
                    "WHERE " + " OR ".join(tests) + ")"
                )
                parts.append("(SELECT * FROM tagged WHERE global_position > %(after)s)")
            if typed:
                parts.append(ordered.replace("{where}", " AND e.event_type = ANY(%(types)s)"))
            if not items:
                parts.append(ordered.replace("{where}", ""))
            steps.append("m AS (" + " UNION ".join(parts) + ")")
            text = (
                "WITH " + ", ".join(steps) + " SELECT h.head, p.* FROM h LEFT JOIN LATERAL "
                "(SELECT * FROM m ORDER BY m.global_position LIMIT %(limit)s) AS p ON true "
                "ORDER BY p.global_position"
            )
            statement = sql.SQL(text).format(s=self._name).as_bytes(None)
            self._read_query[shape] = statement
        params: dict[str, Any] = {"after": after, "limit": limit, "types": typed}
        for n, item in enumerate(tagged):
            params[f"t{n}"] = sorted(item.tags)
            params[f"y{n}"] = sorted(item.types)
        return statement, params, False if typed else None

    def read_all(
        self,
        after: int,
        limit: int,
        stream_types: Collection[str] | None,
        event_types: Collection[str] | None,
    ) -> tuple[bytes, dict[str, Any]]:
        """Return the page query for these filters and its parameters."""
        query = self._read_all[stream_types is not None, event_types is not None]
        params = {
            "after": after,
            "limit": limit,
            "stream_types": None if stream_types is None else list(stream_types),
            "event_types": None if event_types is None else list(event_types),
        }
        return query, params


def append_params(
    stream_id: str,
    stream_type: str,
    events: Sequence[NewEvent],
    expected: int | None,
    *,
    locks: Sequence[Any],
    stream_lock: int | None = None,
) -> list[Any]:
    """Return the parameters of `Statements.append(len(events))`, in order (with
    `stream_lock`, the key of the stream's lock, those of the `any_version` statement).

    `locks` are those of the `dcb` step: the sorted shared keys, or for a conditional
    append the arguments of `esframework_condition` (see `dcb_locks`).
    """
    params: list[Any] = [] if stream_lock is None else [stream_lock]
    params += locks
    params += (stream_id, stream_id, stream_type)
    if len(events) <= MAX_VALUES_ROWS:
        for e in events:
            params += (
                e.event_id,
                e.event_type,
                e.schema_version,
                e.data,
                e.metadata,
                sorted(set(e.tags)),
            )
    else:
        params += (
            [e.event_id for e in events],
            [e.event_type for e in events],
            [e.schema_version for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
            [orjson.dumps(sorted(set(e.tags))).decode() for e in events],
        )
    params += (expected, expected, stream_type)
    return params


def snapshot_params(snapshot: SnapshotRecord) -> tuple[Any, ...]:
    return (
        snapshot.stream_id,
        snapshot.stream_type,
        snapshot.data,
        snapshot.version,
        snapshot.state_schema,
    )


def to_snapshot(stream_id: str, row: tuple[str, str, int, str]) -> SnapshotRecord:
    return SnapshotRecord(
        stream_id=stream_id, stream_type=row[0], state_schema=row[1], version=row[2], data=row[3]
    )


def lease_key(schema: str, subscription: str) -> int:
    """The advisory-lock key of a subscription's lease: 64 bits, so names do not collide."""
    digest = hashlib.sha256(f"esframework lease {schema} {subscription}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lease_key_halves(key: int) -> tuple[int, int]:
    """How `pg_locks` shows a bigint advisory key: its high and low 32 bits, unsigned."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
