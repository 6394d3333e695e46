"""What the three benchmark sides share: sizes, the side protocol, timing, session settings."""

from __future__ import annotations

import math
import shlex
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row

__all__ = [
    "FLUSH_OPTIONS",
    "LOAD_WRITE_CHUNK",
    "Side",
    "Sizes",
    "Writer",
    "amount_for",
    "check_session_settings",
    "drop_schema",
    "median",
    "note_for",
    "percentile",
    "recreate_schema",
    "session_settings",
    "timed_repeat",
    "with_options",
]

# The number of events written per save when a side sets up a long stream (load, catchup).
LOAD_WRITE_CHUNK = 1_000

# A slow commit flush (network storage, synchronous replication), simulated in the benchmark's
# own sessions only: every commit waits 4 ms before flushing the WAL, and commits that arrive
# meanwhile share that flush (group commit). Superuser settings, given in the connection
# string's `options`, so the server's configuration is never changed.
FLUSH_OPTIONS = "-c commit_delay=4000 -c commit_siblings=0"


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does; `quick()` divides the counts by ten."""

    create: int = 5_000
    append: int = 2_000
    append_snapshot_every: int = 100
    batch_saves: int = 200
    batch_size: int = 50
    load_events: int = 1_000
    load_seconds: float = 1.0
    catchup: int = 100_000
    live_samples: int = 200
    concurrent_writers: tuple[int, ...] = (1, 4, 16)
    concurrent_seconds: float = 2.0
    schemas: int = 4
    unit_of_work_writers: int = 4
    held_writers: int = 4
    held_seconds: float = 1.0
    live_writers: int = 4
    memory_events: int = 1_000_000
    partition_events: int = 100_000
    dcb_events: int = 100_000  # the `dcb` group's prefill
    dcb_writers: tuple[int, ...] = (1, 4)
    dcb_seconds: float = 2.0  # of conditional appends, per writer count
    dcb_read_seconds: float = 1.0  # of reads, and of decide + append round trips

    def quick(self) -> Sizes:
        return replace(
            self,
            create=self.create // 10,
            append=self.append // 10,
            batch_saves=self.batch_saves // 10,
            load_events=self.load_events // 10,
            load_seconds=self.load_seconds / 5,
            catchup=self.catchup // 10,
            live_samples=self.live_samples // 10,
            concurrent_seconds=self.concurrent_seconds / 10,
            memory_events=self.memory_events // 10,
            partition_events=self.partition_events // 10,
            dcb_events=self.dcb_events // 10,
            dcb_seconds=self.dcb_seconds / 10,
            dcb_read_seconds=self.dcb_read_seconds / 5,
        )


def amount_for(i: int) -> Decimal:
    """A realistic amount with two decimal places, different per event."""
    return Decimal(1 + i % 10_000) / 100


def note_for(i: int) -> str:
    return f"deposit {i}"


class Writer(Protocol):
    """One concurrent writer: owns its aggregates and connections; each call saves one new
    event to each of its aggregates (one aggregate, or two in one unit of work)."""

    def save(self) -> None: ...

    def close(self) -> None: ...


class Side(Protocol):
    """One contender. Every rate is per second; every method cleans up after itself."""

    name: str
    dsn: str
    schema: str

    def setup(self) -> None:
        """Create this side's schema and tables, empty."""

    def close(self) -> None:
        """Close this side's connections; its schema and tables stay."""

    def teardown(self) -> None:
        """Close connections and drop this side's schema."""

    def create(self, n: int) -> float:
        """Save `n` new aggregates with one event each; events/s."""

    def append(self, n: int, snapshot_every: int) -> float:
        """Load one aggregate and save one event to it, `n` times; saves/s."""

    def batch(self, saves: int, size: int) -> float:
        """Make `saves` saves of `size` events each; events/s."""

    def load(self, events: int, seconds: float) -> tuple[float, float]:
        """Write an `events`-long aggregate; loads/s without, then with a snapshot."""

    def prepare_catchup(self, n: int) -> None:
        """Store `n` events first in the global order (right after `setup`)."""

    def catchup(self, n: int) -> float:
        """Read the first `n` events in global order as typed events; events/s."""

    def hold_append_open(self) -> AbstractContextManager[None]:
        """Append one event in a transaction that stays open while the context is."""


def with_options(dsn: str, options: str) -> str:
    """`dsn` with `options` (libpq `-c name=value` settings) added to any it already has."""
    own = conninfo_to_dict(dsn).get("options")
    return make_conninfo(dsn, options=f"{own} {options}" if own else options)


def session_settings(dsn: str) -> dict[str, str]:
    """The `-c name=value` settings in a connection string's `options`."""
    words = shlex.split(str(conninfo_to_dict(dsn).get("options", "")))
    pairs = [w.removeprefix("-c") for w in words if w != "-c"]
    return dict(p.strip().split("=", 1) for p in pairs if "=" in p)


def check_session_settings(conn: psycopg.Connection[Any], dsn: str, who: str) -> None:
    """Fail unless `conn` runs with the settings that `dsn` asks for: a figure measured
    without the simulated flush must not pass for one measured with it."""
    cursor = conn.cursor(row_factory=tuple_row)  # whatever the connection's row factory
    for name, wanted in session_settings(dsn).items():
        row = cursor.execute("SELECT current_setting(%s)", (name,)).fetchone()
        if row is None or row[0] != wanted:
            msg = f"{who}: {name} is {row and row[0]!r}, not {wanted!r}"
            raise RuntimeError(msg)


def recreate_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def timed_repeat(action: Callable[[], object], seconds: float, minimum: int = 3) -> float:
    """Call `action` until `seconds` have passed (and at least `minimum` times); calls/s."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        action()
        count += 1
        now = time.perf_counter()
        if count >= minimum and now >= deadline:
            return count / (now - start)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan
