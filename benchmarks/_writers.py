"""Concurrent writers for the write-path scenarios: one process per writer, or one thread.

A writer is described by a `WriterSpec` (which side, which database and schema, how many
aggregates per transaction) and built where it runs, by the side module's `open_writer`, so
that it owns its connections. `WriterProcesses` keeps a set of spawned worker processes for
the whole run (each imports the three sides once) and gives each writer one of them:
16 writers on a 2-core machine then spend their Python time on both cores instead of queueing
for one GIL. `WriterThreads` runs the same loop in threads of this process, for comparison
(`--writers threads`).

Every save is timed with `time.monotonic()`, which on Linux is one clock for all processes,
so saves of different processes can be compared with one window.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from _common import Writer, percentile

__all__ = [
    "WriterPool",
    "WriterProcesses",
    "WriterSpec",
    "WriterThreads",
    "held_open_latencies",
    "write_rate",
]

Save = tuple[float, float]  # (start, end) of one save, time.monotonic()
START_DELAY = 0.05  # s between the go message and the first save, so that all start at once


@dataclass(frozen=True)
class WriterSpec:
    """One writer: `side`'s writer on `dsn` (which carries any session settings) in `schema`,
    saving `aggregates` aggregates per transaction; or, with `dcb`, appending one tagged
    event at a time with a condition (the `dcb` group, `_dcb.py`)."""

    side: str
    dsn: str
    schema: str
    aggregates: int = 1
    dcb: bool = False


def open_writer(spec: WriterSpec) -> Writer:
    if spec.dcb:
        from _dcb import DcbWriter

        if spec.side == "esframework":
            from _dcb_esframework import open_client
        else:
            from _dcb_eventsourcing import open_client
        return DcbWriter(open_client(spec.dsn, spec.schema))
    if spec.side == "esframework":
        from _esframework_side import open_writer as open_esframework

        return open_esframework(spec.dsn, spec.schema, spec.aggregates)
    if spec.side == "eventsourcing":
        from _eventsourcing_side import open_writer as open_peer

        return open_peer(spec.dsn, spec.schema, spec.aggregates)
    from _raw_side import open_writer as open_raw

    return open_raw(spec.dsn, spec.schema, spec.aggregates)


def _save_until(
    writer: Writer, start_at: float, stopped: Callable[[], bool], saves: list[Save]
) -> None:
    """Save from `start_at` on until `stopped()`, recording every save's (start, end)."""
    clock = time.monotonic
    time.sleep(max(0.0, start_at - clock()))
    while not stopped():
        begin = clock()
        writer.save()
        saves.append((begin, clock()))


class Running:
    """Writers saving; `saves` (every writer's) is filled in when the run ends."""

    def __init__(self, aggregates: list[int]) -> None:
        self.aggregates = aggregates  # per writer
        self.saves: list[list[Save]] = []

    def events_in(self, start: float, end: float) -> int:
        """Events saved by the saves that started and ended inside [start, end]."""
        return sum(
            n * sum(1 for s, e in per_writer if start <= s and e <= end)
            for n, per_writer in zip(self.aggregates, self.saves, strict=True)
        )

    def latencies_ms(self, start: float, end: float) -> list[float]:
        """Latency of every save in progress at some moment of [start, end]."""
        return [(e - s) * 1000 for w in self.saves for s, e in w if s <= end and e >= start]


class WriterPool(Protocol):
    def running(self, specs: list[WriterSpec]) -> AbstractContextManager[Running]:
        """Open the writers (untimed), let them all save until the block ends."""

    def close(self) -> None: ...


def _worker(pipe: Connection) -> None:
    """A worker process: open a writer, save between `go` and `stop`, send the saves back."""
    writer: Writer | None = None
    while True:
        message = pipe.recv()
        try:
            if message[0] == "open":
                writer = open_writer(message[1])
                pipe.send(("ready", None))
            elif message[0] == "go":
                assert writer is not None
                saves: list[Save] = []
                try:
                    _save_until(writer, message[1], pipe.poll, saves)
                finally:
                    writer.close()
                    writer = None
                pipe.recv()  # the stop message that ended the loop
                pipe.send(("saves", saves))
            elif message[0] == "quit":
                return
            # else: the stop of a run whose saving failed (already reported)
        except BaseException:  # noqa: BLE001  # reported to the parent, which raises
            pipe.send(("error", traceback.format_exc()))


@dataclass
class WriterProcesses:
    """Worker processes, started on first use and kept for the run (`close` ends them)."""

    _pipes: list[Connection] = field(default_factory=list)
    _processes: list[Any] = field(default_factory=list)

    def _grow(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with connections
        while len(self._pipes) < count:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child,), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)

    @staticmethod
    def _reply(pipe: Connection, expected: str) -> Any:
        kind, value = pipe.recv()
        if kind == "error":
            msg = f"a writer process failed:\n{value}"
            raise RuntimeError(msg)
        assert kind == expected, (kind, expected)
        return value

    @contextmanager
    def running(self, specs: list[WriterSpec]) -> Iterator[Running]:
        self._grow(len(specs))
        pipes = self._pipes[: len(specs)]
        for pipe, spec in zip(pipes, specs, strict=True):
            pipe.send(("open", spec))
        opened, errors = [], []
        for pipe in pipes:
            try:
                self._reply(pipe, "ready")
                opened.append(pipe)
            except RuntimeError as error:
                errors.append(error)
        if errors:
            for pipe in opened:  # close the writers that did open
                pipe.send(("go", time.monotonic()))
                pipe.send(("stop",))
                self._reply(pipe, "saves")
            raise errors[0]
        run = Running([s.aggregates for s in specs])
        start_at = time.monotonic() + START_DELAY
        for pipe in pipes:
            pipe.send(("go", start_at))
        try:
            time.sleep(START_DELAY)
            yield run
        finally:
            for pipe in pipes:
                pipe.send(("stop",))
            run.saves = [self._reply(pipe, "saves") for pipe in pipes]

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(("quit",))
        for process in self._processes:
            process.join(10)
        self._pipes.clear()
        self._processes.clear()


class WriterThreads:
    """The same writers as threads of this process, sharing its GIL."""

    @contextmanager
    def running(self, specs: list[WriterSpec]) -> Iterator[Running]:
        writers = [open_writer(spec) for spec in specs]
        run = Running([s.aggregates for s in specs])
        run.saves = [[] for _ in specs]
        stop = threading.Event()
        errors: list[BaseException] = []
        start_at = time.monotonic() + START_DELAY

        def save(writer: Writer, saves: list[Save]) -> None:
            try:
                _save_until(writer, start_at, stop.is_set, saves)
            except BaseException as error:  # noqa: BLE001  # raised below
                errors.append(error)
            finally:
                writer.close()

        threads = [
            threading.Thread(target=save, args=(w, out), daemon=True)
            for w, out in zip(writers, run.saves, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(START_DELAY)
            yield run
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        pass


WARMUP = 0.3  # s of saving before the measured window opens


def write_rate(pool: WriterPool, specs: list[WriterSpec], seconds: float) -> float:
    """Events/s of `specs`' writers saving together for `seconds` (after a warm-up)."""
    with pool.running(specs) as run:
        time.sleep(WARMUP)
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
    return run.events_in(start, end) / (end - start)


def held_open_latencies(
    pool: WriterPool,
    specs: list[WriterSpec],
    hold_append_open: Callable[[], AbstractContextManager[None]],
    seconds: float,
) -> dict[str, float]:
    """p50 and p99 save latency (ms) of `specs`' writers without, then with, an append held
    open by another transaction for `seconds`.

    The saves that count are those in progress at some moment of the measured window: in
    the second run that window is exactly the time the other transaction is open, so a store
    that serialises appends shows its writers blocked for up to `seconds`.
    """

    def measure(hold: bool) -> list[float]:
        with pool.running(specs) as run:
            time.sleep(WARMUP)
            with hold_append_open() if hold else _nothing():
                start = time.monotonic()
                time.sleep(seconds)
                end = time.monotonic()
            time.sleep(WARMUP)  # let the blocked saves finish and be recorded
        return run.latencies_ms(start, end)

    baseline, held = measure(hold=False), measure(hold=True)
    return {
        "baseline_p50": percentile(baseline, 0.5),
        "baseline_p99": percentile(baseline, 0.99),
        "p50": percentile(held, 0.5),
        "p99": percentile(held, 0.99),
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield
