"""The `dcb` scenario group: dynamic consistency boundaries, side by side.

Both sides work at the level of their store (esframework's `PostgresEventStore.read_query`
and conditional `append`; the peer's tag-table recorder, `eventsourcing.dcb.postgres_tt`),
each in a schema of its own, over a store pre-filled once with tagged events. What differs
between the sides is in `_dcb_esframework.py` and `_dcb_eventsourcing.py`, which implement
`DcbSide`; the workload (tags, queries, the fold) and the timing are here, shared.

The workload is the course subscription of the DCB specification: every event is a
`Subscribed` event tagged with one course and one student. The prefill (`prefill_tags`) has
`events / 100` courses of 100 events each and `events / 10` students of 10 events each, a
student's ten events in ten different courses. The query of a decision is the 2-tag OR
"the course's events or the student's events" (about 110 events over the full prefill).

Scenarios (every figure a rate, higher is better):

- `dcb_append{1,4}[_flush]`: 1 and 4 writers (`WriterPool`: processes or threads, each
  writer with its own connection), each appending 1 event with 2 tags at a time, its
  condition the OR query of those two tags after the head the writer read when it opened.
  The tags are new for every append (the "unique username" kind of decision), so no
  condition ever fails, and every append still checks its condition against the store.
- `dcb_read`: reads/s of the 2-tag OR query over the prefill, course and student changing
  from read to read.
- `dcb_decide`: "decide + append" round trips/s on one connection: read the query, fold the
  events (decode every event's JSON, count the course's and the student's subscriptions),
  append one event with the condition "nothing matching the query after the read's head".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import orjson
import psycopg
from _common import FLUSH_OPTIONS, Sizes, timed_repeat, with_options
from _writers import WriterPool, WriterSpec, write_rate
from psycopg import sql

__all__ = [
    "EVENT_TYPE",
    "DcbSide",
    "DcbWriter",
    "DcbWriterClient",
    "Fold",
    "event_data",
    "fold",
    "make_dcb_side",
    "prefill_tags",
    "query_for",
    "run_dcb",
    "run_decide",
    "run_read",
    "vacuum_schema",
    "writer_tags",
]

EVENT_TYPE = "Subscribed"
PREFILL_CHUNK = 1_000  # events per append when pre-filling
CAPACITY = 10**9  # so large that every decision appends: the figure is the round trip's


def courses_for(events: int) -> int:
    return max(1, events // 100)


def students_for(events: int) -> int:
    return max(1, events // 10)


def prefill_tags(events: int) -> Iterable[tuple[int, str, str]]:
    """(i, course tag, student tag) of every pre-filled event, in order."""
    courses = courses_for(events)
    for i in range(events):
        yield i, f"course:c{i % courses}", f"student:s{i // 10}"


def query_for(events: int, k: int) -> tuple[str, str]:
    """The (course tag, student tag) of the `k`-th read or decision over a prefill of
    `events`: every course and many students in turn, rarely a student of that course."""
    return f"course:c{k % courses_for(events)}", f"student:s{(k * 7919) % students_for(events)}"


def event_data(course: str, student: str) -> bytes:
    return orjson.dumps({"course": course, "student": student})


def writer_tags(writer: str, n: int) -> tuple[str, str]:
    """Tags no other append has: writer `writer`'s `n`-th append."""
    return f"course:{writer}-{n}", f"student:{writer}-{n}"


class Fold:
    """A decision's state: how many subscriptions the course and the student have."""

    def __init__(self, course: str, student: str) -> None:
        self.course, self.student = course, student
        self.course_count = self.student_count = 0

    def apply(self, data: bytes | str) -> None:
        fields = orjson.loads(data)
        if fields["course"] == self.course:
            self.course_count += 1
        if fields["student"] == self.student:
            self.student_count += 1

    @property
    def allowed(self) -> bool:
        return self.course_count < CAPACITY and self.student_count < CAPACITY


def fold(course: str, student: str, datas: Iterable[bytes | str]) -> Fold:
    state = Fold(course, student)
    for data in datas:
        state.apply(data)
    return state


class DcbWriterClient(Protocol):
    """One writer's connection to a side's store."""

    def head_of(self, tags: Sequence[str]) -> int:
        """The head of a read of the OR query of `tags` (`after` for later appends)."""

    def append(self, tags: Sequence[str], data: bytes, after: int) -> None:
        """Append one event tagged `tags`, on condition that nothing matching the OR query
        of `tags` was stored after `after`; raise if the condition fails."""

    def close(self) -> None: ...


class DcbSide(Protocol):
    """A contender of the `dcb` group, in its own schema."""

    name: str
    dsn: str
    schema: str
    decided: int  # decisions made so far: the next run goes on from there

    def setup(self, events: int) -> None:
        """Create the schema and tables, and store the prefill (untimed)."""

    def read(self, tags: Sequence[str]) -> tuple[list[bytes | str], int]:
        """The data of the events the OR query of `tags` matches, and the read's head."""

    def append(self, tags: Sequence[str], data: bytes, after: int) -> None:
        """As `DcbWriterClient.append`, on the side's own connection."""

    def teardown(self) -> None: ...


class DcbWriter:
    """A `Writer` (see `_writers.py`) of conditional appends with new tags."""

    def __init__(self, client: DcbWriterClient) -> None:
        self._client = client
        self._name = uuid.uuid4().hex[:12]
        self._n = 0
        self._after = client.head_of(writer_tags(self._name, 0))
        self.save()  # the first append (connection warm, statements prepared) is not timed

    def save(self) -> None:
        self._n += 1
        tags = writer_tags(self._name, self._n)
        self._client.append(tags, event_data(*tags), self._after)

    def close(self) -> None:
        self._client.close()


def run_read(side: DcbSide, events: int, seconds: float) -> float:
    """Reads/s of the 2-tag OR query."""
    k = 0

    def read() -> None:
        nonlocal k
        k += 1
        datas, _head = side.read(query_for(events, k))
        assert len(datas) >= min(events, 100), (len(datas), query_for(events, k))

    return timed_repeat(read, seconds)


def run_decide(side: DcbSide, events: int, seconds: float, start: int) -> tuple[float, int]:
    """Decide + append round trips/s; and the `k` to start the next run from, so that runs
    go on through the courses instead of deciding about the same ones again."""
    k = start

    def decide() -> None:
        nonlocal k
        k += 1
        course, student = query_for(events, k)
        datas, head = side.read((course, student))
        state = fold(course, student, datas)
        assert state.allowed
        side.append((course, student), event_data(course, student), head)

    return timed_repeat(decide, seconds), k


def vacuum_schema(dsn: str, schema: str) -> None:
    """VACUUM and ANALYZE every table of `schema` after the prefill, as autovacuum would
    in a store that has been running: both sides start from fresh statistics and no dead
    rows. (esframework writes each event's position after its commit, so a bulk append
    leaves one dead row version per event until a vacuum, which slows its next appends.)"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table)))


SIDES = ("esframework", "eventsourcing")  # raw psycopg has no DCB store to compare with


def make_dcb_side(name: str, dsn: str) -> DcbSide:
    if name == "esframework":
        from _dcb_esframework import EsframeworkDcbSide

        return EsframeworkDcbSide(dsn)
    from _dcb_eventsourcing import EventsourcingDcbSide

    return EventsourcingDcbSide(dsn)


def run_dcb(
    side: DcbSide, sizes: Sizes, writers: WriterPool, step: Callable[[str, Callable[[], Any]], Any]
) -> dict[str, float]:
    """One round of the `dcb` group on one side."""
    out: dict[str, float] = {}
    for suffix, dsn in (("", side.dsn), ("_flush", with_options(side.dsn, FLUSH_OPTIONS))):
        for count in sizes.dcb_writers:
            name = f"dcb_append{count}{suffix}"
            specs = [WriterSpec(side.name, dsn, side.schema, dcb=True) for _ in range(count)]
            out[name] = step(name, lambda s=specs: write_rate(writers, s, sizes.dcb_seconds))
    out["dcb_read"] = step(
        "dcb_read", lambda: run_read(side, sizes.dcb_events, sizes.dcb_read_seconds)
    )

    def decide() -> float:
        rate, side.decided = run_decide(
            side, sizes.dcb_events, sizes.dcb_read_seconds, side.decided
        )
        return rate

    out["dcb_decide"] = step("dcb_decide", decide)
    return out
