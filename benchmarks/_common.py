"""What the three benchmark sides share: sizes, the side protocol, timing and threads."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol, Self

import psycopg
from psycopg import sql

__all__ = [
    "LOAD_WRITE_CHUNK",
    "Side",
    "Sizes",
    "Writer",
    "amount_for",
    "drop_schema",
    "held_open_latencies",
    "median",
    "note_for",
    "percentile",
    "recreate_schema",
    "run_concurrent",
    "timed_repeat",
]

# The number of events written per save when a side sets up a long stream (load, catchup).
LOAD_WRITE_CHUNK = 1_000


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
    concurrent_threads: int = 4
    concurrent_seconds: float = 10.0
    held_writers: int = 2
    held_seconds: float = 1.0
    memory_events: int = 1_000_000

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
        )


def amount_for(i: int) -> Decimal:
    """A realistic amount with two decimal places, different per event."""
    return Decimal(1 + i % 10_000) / 100


def note_for(i: int) -> str:
    return f"deposit {i}"


class Writer(Protocol):
    """One thread's writer: owns one aggregate and saves one new event to it per call."""

    def save(self) -> None: ...

    def close(self) -> None: ...


class Side(Protocol):
    """One contender. Every rate is per second; every method cleans up after itself."""

    name: str

    def setup(self) -> None:
        """Create this side's schema and tables, empty."""

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

    def open_writer(self) -> Writer:
        """A writer for one thread, with its own aggregate."""

    def hold_append_open(self) -> AbstractContextManager[None]:
        """Append one event in a transaction that stays open while the context is."""


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


class _WriterThreads:
    """Threads that each save through their own writer until stopped, timing every save."""

    def __init__(self, open_writer: Callable[[], Writer], threads: int) -> None:
        self._writers = [open_writer() for _ in range(threads)]
        self._stop = threading.Event()
        self._go = threading.Barrier(threads + 1)
        self._errors: list[BaseException] = []
        # (start, end) of every save, per thread; appended only by the owning thread.
        self.saves: list[list[tuple[float, float]]] = [[] for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._run, args=(w, out), daemon=True)
            for w, out in zip(self._writers, self.saves, strict=True)
        ]

    def _run(self, writer: Writer, out: list[tuple[float, float]]) -> None:
        clock = time.perf_counter
        try:
            self._go.wait()
            while not self._stop.is_set():
                start = clock()
                writer.save()
                out.append((start, clock()))
        except BaseException as exc:  # noqa: BLE001  # re-raised by __exit__
            self._errors.append(exc)
            self._stop.set()

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        self._go.wait()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for writer in self._writers:
            writer.close()
        if self._errors:
            raise self._errors[0]

    def all_saves(self) -> Iterator[tuple[float, float]]:
        for per_thread in self.saves:
            yield from per_thread


def run_concurrent(open_writer: Callable[[], Writer], threads: int, seconds: float) -> float:
    """Events/s of `threads` writers saving one event at a time for `seconds`."""
    with _WriterThreads(open_writer, threads) as running:
        start = time.perf_counter()
        time.sleep(seconds)
        end = time.perf_counter()
    done = sum(1 for s, e in running.all_saves() if start <= s and e <= end)
    return done / (end - start)


def held_open_latencies(
    open_writer: Callable[[], Writer],
    hold_append_open: Callable[[], AbstractContextManager[None]],
    writers: int,
    seconds: float,
) -> tuple[float, float]:
    """p99 save latency (ms) of `writers` threads without, then with, an append held open.

    The saves that count are those in progress at some moment of the measured window: in
    the second run that window is exactly the time the other transaction is open, so a store
    that serialises appends shows its writers blocked for up to `seconds`.
    """
    warmup = 0.2

    def measure(hold: bool) -> float:
        with _WriterThreads(open_writer, writers) as running:
            time.sleep(warmup)
            if hold:
                with hold_append_open():
                    start = time.perf_counter()
                    time.sleep(seconds)
                    end = time.perf_counter()
            else:
                start = time.perf_counter()
                time.sleep(seconds)
                end = time.perf_counter()
            time.sleep(warmup)  # let the blocked saves finish and be recorded
        latencies = [(e - s) * 1000 for s, e in running.all_saves() if s <= end and e >= start]
        return percentile(latencies, 0.99)

    return measure(hold=False), measure(hold=True)
