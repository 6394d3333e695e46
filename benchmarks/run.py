"""Benchmark esframework against the `eventsourcing` library and plain psycopg on PostgreSQL.

    python benchmarks/run.py --dsn postgresql://postgres@127.0.0.1:5432/test --json out.json

Each side works in its own schema, created empty at the start and dropped at the end. The
sides take turns round by round (the order rotates each round), and the table shows the
median of the rounds. Every figure in the table is a rate: higher is better; latencies and
the issue's target ratios are printed below it. See README.md beside this file for what each
scenario does.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from _common import FLUSH_OPTIONS, Side, Sizes, drop_schema, median, recreate_schema, with_options
from _dcb import SIDES as DCB_SIDES
from _dcb import DcbSide, make_dcb_side, run_dcb
from _writers import (
    WriterPool,
    WriterProcesses,
    WriterSpec,
    WriterThreads,
    held_open_latencies,
    write_rate,
)
from psycopg import sql

SIDES = ("esframework", "eventsourcing", "raw")
PEER, RAW = "eventsourcing", "raw"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
MEMORY_SCHEMA = "bench_esframework_memory"

# Scenario name -> unit, in the order they run and are printed.
UNITS: dict[str, str] = {
    "create": "events/s",
    "append": "saves/s",
    "batch": "events/s",
    "load_full": "loads/s",
    "load_snapshot": "loads/s",
    "catchup": "events/s",
    "concurrent1": "events/s",
    "concurrent4": "events/s",
    "concurrent16": "events/s",
    "concurrent1_flush": "events/s",
    "concurrent4_flush": "events/s",
    "concurrent16_flush": "events/s",
    "schemas4": "events/s",
    "databases4": "events/s",
    "unit_of_work": "events/s",
    "subscription_catchup": "events/s",
    "subscription_catchup_read_model": "events/s",
    "async_create": "events/s",
    "async_load_full": "loads/s",
    "async_catchup": "events/s",
    "async_concurrent50": "events/s",
    "partitions1": "events/s",
    "partitions2": "events/s",
    "partitions4": "events/s",
    "dcb_append1": "events/s",
    "dcb_append4": "events/s",
    "dcb_append1_flush": "events/s",
    "dcb_append4_flush": "events/s",
    "dcb_read": "reads/s",
    "dcb_decide": "decisions/s",
}
GROUPS = (
    "create",
    "append",
    "batch",
    "load",
    "catchup",
    "concurrent",
    "schemas",
    "held_open",
    "unit_of_work",
    "live_writers",
    "subscriptions",
    "async",
    "partitions",
    "dcb",
)
# Names that stand for several groups in --scenarios.
PRESETS: dict[str, tuple[str, ...]] = {
    "all": GROUPS,
    "write_path": ("create", "concurrent", "schemas", "held_open", "unit_of_work", "live_writers"),
}
LIVE = "live_latency"  # p50 and p99 in ms, esframework only
LIVE_WRITING = "live_latency_writing"  # the same while writers append, with the flush
HELD = "held_open"  # latency results are kept apart from the rates
FLUSH = "_flush"  # suffix of the scenarios run with the simulated 4 ms commit flush


def make_side(name: str, dsn: str, schema: str | None = None) -> Side:
    extra = {"schema": schema} if schema else {}
    if name == "esframework":
        from _esframework_side import EsframeworkSide

        return EsframeworkSide(dsn, **extra)
    if name == PEER:
        from _eventsourcing_side import EventsourcingSide

        return EventsourcingSide(dsn, **extra)
    from _raw_side import RawSide

    return RawSide(dsn, **extra)


class Places:
    """The extra schemas and databases of `schemas4` and `databases4`: for each side, one
    schema per writer beside its own, and the side's own schema in each of the databases
    (created with unique names, dropped at the end)."""

    def __init__(self, dsn: str, sides: Sequence[str], count: int) -> None:
        self._dsn = dsn
        self.schemas = {s: [f"{make_side(s, dsn).schema}_{i}" for i in range(count)] for s in sides}
        tag = uuid.uuid4().hex[:8]
        self._databases = [f"bench_{tag}_{i}" for i in range(count)]
        self.database_dsns = [
            psycopg.conninfo.make_conninfo(dsn, dbname=d) for d in self._databases
        ]
        self._sides: list[Side] = []
        self._created: list[str] = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for database in self._databases:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                self._created.append(database)
        for name in sides:
            places = [(dsn, s) for s in self.schemas[name]]
            places += [(d, None) for d in self.database_dsns]
            for place_dsn, schema in places:
                side = make_side(name, place_dsn, schema)
                side.setup()
                side.close()  # the writers connect on their own
                self._sides.append(side)

    def drop(self) -> None:
        for side in self._sides:
            side.teardown()
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            for database in self._created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )


Step = Callable[[str, Callable[[], Any]], Any]


def run_round(
    side: Side,
    sizes: Sizes,
    groups: set[str],
    *,
    writers: WriterPool,
    places: Places | None,
    log: Callable[[str], None],
    dcb: DcbSide | None = None,
) -> dict[str, Any]:
    """One pass of every selected scenario on one side (`dcb`: its side of the dcb group)."""
    out: dict[str, Any] = {}

    def step(name: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = action()
        log(f"  {side.name:<13} {name:<18} {_show(value)}  ({time.perf_counter() - start:.1f} s)")
        return value

    simple: dict[str, Callable[[], float]] = {
        "create": lambda: side.create(sizes.create),
        "append": lambda: side.append(sizes.append, sizes.append_snapshot_every),
        "batch": lambda: side.batch(sizes.batch_saves, sizes.batch_size),
    }
    for name, action in simple.items():
        if name in groups:
            out[name] = step(name, action)
    if "load" in groups:
        out["load_full"], out["load_snapshot"] = step(
            "load", lambda: side.load(sizes.load_events, sizes.load_seconds)
        )
    if "catchup" in groups:
        out["catchup"] = step("catchup", lambda: side.catchup(sizes.catchup))
    out.update(run_write_path(side, sizes, groups, writers, places, step))
    if side.name == "esframework":
        out.update(run_esframework_only(side, sizes, groups, writers, step))
    if dcb is not None:
        out.update(run_dcb(dcb, sizes, writers, step))
    if HELD in groups:
        specs = _specs(side, sizes.held_writers, with_options(side.dsn, FLUSH_OPTIONS))
        out[HELD] = step(
            "held_open",
            lambda: held_open_latencies(writers, specs, side.hold_append_open, sizes.held_seconds),
        )
    return out


def _specs(side: Side, count: int, dsn: str, aggregates: int = 1) -> list[WriterSpec]:
    return [WriterSpec(side.name, dsn, side.schema, aggregates) for _ in range(count)]


def run_write_path(  # noqa: PLR0917
    side: Side,
    sizes: Sizes,
    groups: set[str],
    writers: WriterPool,
    places: Places | None,
    step: Step,
) -> dict[str, float]:
    """The concurrent writers' rates: `concurrent*`, `schemas4`, `databases4`, `unit_of_work`."""
    out: dict[str, float] = {}
    flush_dsn = with_options(side.dsn, FLUSH_OPTIONS)

    def rate(name: str, specs: list[WriterSpec]) -> None:
        out[name] = step(name, lambda: write_rate(writers, specs, sizes.concurrent_seconds))

    if "concurrent" in groups:
        for suffix, dsn in (("", side.dsn), (FLUSH, flush_dsn)):
            for count in sizes.concurrent_writers:
                rate(f"concurrent{count}{suffix}", _specs(side, count, dsn))
    if "schemas" in groups:
        assert places is not None
        if "concurrent1_flush" not in out:  # the one-schema figure they are compared with
            rate("concurrent1_flush", _specs(side, 1, flush_dsn))
        schemas = places.schemas[side.name]
        rate("schemas4", [WriterSpec(side.name, flush_dsn, s) for s in schemas])
        databases = [with_options(d, FLUSH_OPTIONS) for d in places.database_dsns]
        rate("databases4", [WriterSpec(side.name, d, side.schema) for d in databases])
    if "unit_of_work" in groups:
        rate("unit_of_work", _specs(side, sizes.unit_of_work_writers, flush_dsn, aggregates=2))
    return out


def run_esframework_only(
    side: Any,
    sizes: Sizes,
    groups: set[str],
    writers: WriterPool,
    step: Step,
) -> dict[str, Any]:
    """Scenarios with no peer: subscriptions (catch-up, with a read model, latency) and the
    asyncio API."""
    from _async_side import run_async
    from _subscriptions import catchup_rate, live_latency_ms, live_latency_while_writing_ms

    out: dict[str, Any] = {}
    if "subscriptions" in groups:
        store = side.store
        out["subscription_catchup"] = step(
            "sub catchup", lambda: catchup_rate(store, sizes.catchup, read_model=False)
        )
        out["subscription_catchup_read_model"] = step(
            "sub readmodel", lambda: catchup_rate(store, sizes.catchup, read_model=True)
        )
        out[LIVE] = step("live latency", lambda: live_latency_ms(store, sizes.live_samples))
    if "live_writers" in groups:
        flush_dsn = with_options(side.dsn, FLUSH_OPTIONS)
        specs = _specs(side, sizes.live_writers, flush_dsn)
        out[LIVE_WRITING] = step(
            "live, writing",
            lambda: live_latency_while_writing_ms(
                writers, specs, flush_dsn, side.schema, sizes.live_samples
            ),
        )
    if "async" in groups:
        out.update(step("async", lambda: run_async(side.dsn, side.schema, sizes)))
    if "partitions" in groups:
        from _partitions import on_postgres

        out.update(step("partitions", lambda: on_postgres(side.dsn, sizes.partition_events)))
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items())
    if isinstance(value, tuple):
        return " / ".join(_show(v) for v in value)
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return None
    return round(a / b, 3)


def _clean(value: Any) -> Any:
    """JSON has no NaN: report missing figures as null, and round the rest."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def summarize(per_round: list[dict[str, dict[str, Any]]], sides: Sequence[str]) -> dict[str, Any]:
    """Medians per scenario and side, ratios, scaling and the held-open latencies."""
    scenarios: dict[str, dict[str, Any]] = {}
    rounds: dict[str, dict[str, list[float]]] = {}
    for name, unit in UNITS.items():
        values = {s: [r[s][name] for r in per_round if name in r.get(s, {})] for s in sides}
        if not any(values.values()):
            continue
        rounds[name] = values
        row: dict[str, Any] = {"unit": unit}
        row.update({s: median(v) if v else None for s, v in values.items()})
        scenarios[name] = row

    ratios = {
        name: {
            "esframework/eventsourcing": _ratio(row.get("esframework"), row.get(PEER)),
            "esframework/raw": _ratio(row.get("esframework"), row.get(RAW)),
        }
        for name, row in scenarios.items()
    }
    result: dict[str, Any] = {"scenarios": scenarios, "ratios": ratios}
    scaling = {s: _scaling(scenarios, s) for s in sides}
    if any(scaling.values()):
        result["scaling"] = {s: v for s, v in scaling.items() if v}
    held = {s: [r[s][HELD] for r in per_round if HELD in r.get(s, {})] for s in sides}
    if any(held.values()):
        result["held_open_ms"] = {
            s: {key: median([h[key] for h in v]) for key in v[0]} for s, v in held.items() if v
        }
    for name, key in ((LIVE, "live_latency_ms"), (LIVE_WRITING, "live_latency_writing_ms")):
        live = [r["esframework"][name] for r in per_round if name in r.get("esframework", {})]
        if live:
            result[key] = {
                "p50": median([p50 for p50, _ in live]),
                "p99": median([p99 for _, p99 in live]),
            }
    result["targets"] = targets(result)
    result["dcb_targets"] = dcb_targets(result)
    catchup = scenarios.get("catchup", {}).get("esframework")
    for name in ("subscription_catchup", "subscription_catchup_read_model"):
        if name in scenarios and catchup:
            ratios[name]["esframework/catchup"] = _ratio(scenarios[name]["esframework"], catchup)
    rates = {n: row["esframework"] for n, row in scenarios.items() if n.startswith("partitions")}
    if len(rates) == len(PARTITION_COUNTS):
        from _partitions import ratios as partition_ratios

        result["partition_scaling"] = partition_ratios(rates)
    result["rounds"] = rounds
    return result


PARTITION_COUNTS = (1, 2, 4)  # the `partitions` group's scenarios: partitions1, 2 and 4


# Ratio name -> (numerator, denominator) scenarios, for every side.
SCALING: dict[str, tuple[str, str]] = {
    "4/1": ("concurrent4", "concurrent1"),
    "16/1": ("concurrent16", "concurrent1"),
    "4/1 flush": ("concurrent4_flush", "concurrent1_flush"),
    "16/1 flush": ("concurrent16_flush", "concurrent1_flush"),
    "schemas4/1 flush": ("schemas4", "concurrent1_flush"),
    "databases4/1 flush": ("databases4", "concurrent1_flush"),
    "dcb 4/1": ("dcb_append4", "dcb_append1"),
    "dcb 4/1 flush": ("dcb_append4_flush", "dcb_append1_flush"),
}


def _scaling(scenarios: dict[str, dict[str, Any]], side: str) -> dict[str, float | None]:
    found = {
        name: _ratio(scenarios[a].get(side), scenarios[b].get(side))
        for name, (a, b) in SCALING.items()
        if a in scenarios and b in scenarios
    }
    return {k: v for k, v in found.items() if v is not None}


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The write-path issue's targets, each with its figure from this run (null if the run did
    not measure it) and whether it is met."""
    es_scaling = summary.get("scaling", {}).get("esframework", {})
    ratios = summary["ratios"]
    held = summary.get("held_open_ms", {}).get("esframework", {})
    live = summary.get("live_latency_writing_ms", {})

    def es_raw(name: str) -> float | None:
        return ratios.get(name, {}).get("esframework/raw")

    wanted: list[tuple[str, float | None, str, float]] = [
        ("flush: esframework 4 writers / 1 writer", es_scaling.get("4/1 flush"), ">=", 3),
        ("flush: esframework 16 writers / 1 writer", es_scaling.get("16/1 flush"), ">=", 8),
        ("flush: esframework / raw, 4 writers", es_raw("concurrent4_flush"), ">=", 0.8),
        ("flush: esframework / raw, 16 writers", es_raw("concurrent16_flush"), ">=", 0.8),
        ("flush: esframework schemas4 / one schema", es_scaling.get("schemas4/1 flush"), ">=", 3),
        (
            "flush: esframework databases4 / one database",
            es_scaling.get("databases4/1 flush"),
            ">=",
            3,
        ),
        ("flush: esframework held_open p99 of others (ms)", held.get("p99"), "<=", 50),
        ("no flush: create, esframework / raw", es_raw("create"), ">=", 0.7),
        ("no flush: concurrent4, esframework / raw", es_raw("concurrent4"), ">=", 0.8),
        ("flush: live delivery p50 (ms), 4 writers", live.get("p50"), "<=", 10),
        ("flush: live delivery p99 (ms), 4 writers", live.get("p99"), "<=", 50),
    ]
    out = []
    for name, figure, op, bound in wanted:
        value = None if figure is None or math.isnan(figure) else figure
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"target": name, "value": value, "wanted": f"{op} {bound}", "met": met})
    return out


DCB_VS_PEER = 2  # issue 12: esframework >= 2x the peer on each dcb scenario
DCB_SCALING = 3  # and 4 writers >= 3x 1 writer with the flush


def dcb_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The DCB issue's targets, measured or null."""
    ratios = summary["ratios"]
    wanted: list[tuple[str, float | None, float]] = [
        (f"{name}: esframework / eventsourcing", ratios[name]["esframework/eventsourcing"], 2)
        for name in UNITS
        if name.startswith("dcb_") and name in ratios
    ]
    scaling = summary.get("scaling", {}).get("esframework", {})
    wanted.append(("dcb flush: esframework 4 writers / 1 writer", scaling.get("dcb 4/1 flush"), 3))
    out = []
    for name, value, bound in wanted:
        met = None if value is None else value >= bound
        out.append({"target": name, "value": value, "wanted": f">= {bound}", "met": met})
    return out


def print_table(summary: dict[str, Any], sides: Sequence[str]) -> None:
    heads = ["scenario", "unit", *sides, "es/peer", "es/raw"]
    rows = [heads]
    for name, row in summary["scenarios"].items():
        ratio = summary["ratios"][name]
        rows.append(
            [
                name,
                row["unit"],
                *[_fmt(row.get(s)) for s in sides],
                _fmt(ratio["esframework/eventsourcing"], 2),
                _fmt(ratio["esframework/raw"], 2),
            ]
        )
    scaling = summary.get("scaling", {})
    for name in SCALING:
        if any(name in v for v in scaling.values()):
            cells = [_fmt(scaling.get(s, {}).get(name), 2) for s in sides]
            rows.append([f"scaling {name}", "x", *cells, "", ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    for i, r in enumerate(rows):
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for name in ("subscription_catchup", "subscription_catchup_read_model"):
        ratio = summary["ratios"].get(name, {}).get("esframework/catchup")
        if ratio is not None:
            print(f"{name} / esframework catchup: {ratio:.2f}")
    for name, ratio in summary.get("partition_scaling", {}).items():
        print(f"partitions {name} (catch-up rate vs 1 partition): {ratio:.2f}")
    print_latencies(summary)
    print_targets(summary)


def print_latencies(summary: dict[str, Any]) -> None:
    for key, what in (
        ("live_latency_ms", "alone"),
        ("live_latency_writing_ms", "while 4 writers append, with the flush"),
    ):
        if live := summary.get(key):
            print(
                f"live delivery, append to handler (ms), {what}: "
                f"p50 {live['p50']:.1f}, p99 {live['p99']:.1f}"
            )
    held = summary.get("held_open_ms", {})
    if held:
        print(
            "\nsave latency (ms) of other writers (flush), p50 / p99,"
            " without -> with an append held open:"
        )
        for s, h in held.items():
            print(
                f"  {s:<13} {_fmt(h['baseline_p50'], 1):>6} / {_fmt(h['baseline_p99'], 1):<6}"
                f" -> {_fmt(h['p50'], 1)} / {_fmt(h['p99'], 1)}"
            )


def print_targets(summary: dict[str, Any]) -> None:
    for key, title in (
        ("targets", "write-path targets (issue 10)"),
        ("dcb_targets", "DCB targets (issue 12)"),
    ):
        measured = [t for t in summary.get(key, []) if t["value"] is not None]
        if measured:
            print(f"\n{title}:")
            for t in measured:
                mark = "met" if t["met"] else "NOT met"
                print(f"  {t['target']:<48} {t['value']:>8.2f}  (wanted {t['wanted']}: {mark})")


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def run_memory(dsn: str, events: int, log: Callable[[str], None]) -> dict[str, Any]:
    """esframework only: peak RSS growth of reading an `events`-long stream, in a child."""
    from _esframework_side import MEMORY_READS, open_store, write_long_stream

    recreate_schema(dsn, MEMORY_SCHEMA)
    try:
        open_store(dsn, MEMORY_SCHEMA).close()
        stream_id = f"memory-{uuid.uuid4()}"
        start = time.perf_counter()
        write_long_stream(dsn, MEMORY_SCHEMA, stream_id, events)
        log(f"  memory: wrote {events:,} events in {time.perf_counter() - start:.1f} s")
        child = Path(__file__).with_name("_memory.py")
        command = [sys.executable, str(child), "--dsn", dsn, "--schema", MEMORY_SCHEMA]
        command += ["--stream-id", stream_id, "--events", str(events)]
        result: dict[str, Any] = {"events": events}
        for read in MEMORY_READS:  # one fresh process each
            start = time.perf_counter()
            done = subprocess.run(  # noqa: S603
                [*command, "--read", read], stdout=subprocess.PIPE, text=True, check=True
            )
            result.update(json.loads(done.stdout))
            log(f"  memory: {read} measured in {time.perf_counter() - start:.1f} s")
    finally:
        drop_schema(dsn, MEMORY_SCHEMA)
    return result


def environment(dsn: str) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgresql": row[0] if row else None,
        "esframework": version("esframework"),
        "eventsourcing": version("eventsourcing"),
        "psycopg": version("psycopg"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("ESFRAMEWORK_BENCH_DSN", DEFAULT_DSN))
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 10x smaller smoke run")
    parser.add_argument(
        "--memory", action="store_true", help="also measure reading a 1,000,000-event stream"
    )
    parser.add_argument(
        "--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}"
    )
    parser.add_argument(
        "--scenarios",
        "--only",
        dest="only",
        default="all",
        help=f"comma-separated scenario groups ({','.join(GROUPS)}) or presets"
        f" ({','.join(PRESETS)})",
    )
    parser.add_argument(
        "--writers",
        choices=("processes", "threads"),
        default="processes",
        help="run each concurrent writer in a process of its own (default) or in a thread",
    )
    parser.add_argument(
        "--append-snapshot-every",
        type=int,
        default=Sizes.append_snapshot_every,
        help="automatic snapshot interval of the frameworks in `append` (0: never)",
    )
    args = parser.parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    args.only = {g for word in args.only.split(",") if word for g in PRESETS.get(word, (word,))}
    if unknown := set(args.sides) - set(SIDES):
        parser.error(f"unknown side(s): {', '.join(sorted(unknown))}")
    if unknown := args.only - set(GROUPS):
        parser.error(f"unknown scenario group(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def set_up(side: Side, sizes: Sizes, groups: set[str], log: Callable[[str], None]) -> None:
    side.setup()
    if "catchup" in groups:
        start = time.perf_counter()
        side.prepare_catchup(sizes.catchup)
        log(
            f"{side.name}: stored {sizes.catchup:,} events for catchup "
            f"in {time.perf_counter() - start:.1f} s"
        )


def set_up_dcb(
    args: argparse.Namespace, sizes: Sizes, log: Callable[[str], None]
) -> dict[str, DcbSide]:
    """The dcb group's sides, each in its schema, pre-filled (untimed)."""
    out: dict[str, DcbSide] = {}
    for name in args.sides:
        if name in DCB_SIDES:
            side = out[name] = make_dcb_side(name, args.dsn)
            start = time.perf_counter()
            side.setup(sizes.dcb_events)
            log(
                f"{name}: pre-filled {sizes.dcb_events:,} tagged events for dcb "
                f"in {time.perf_counter() - start:.1f} s"
            )
    return out


def run_rounds(
    args: argparse.Namespace, sizes: Sizes, log: Callable[[str], None]
) -> tuple[list[dict[str, dict[str, Any]]], bool | None]:
    """Every round of every side; and whether esframework's saves joined its transactions."""
    sides = [make_side(name, args.dsn) for name in args.sides]
    per_round: list[dict[str, dict[str, Any]]] = []
    writers: WriterPool = WriterProcesses() if args.writers == "processes" else WriterThreads()
    places: Places | None = None
    dcb: dict[str, DcbSide] = {}
    try:
        if "schemas" in args.only:
            places = Places(args.dsn, args.sides, sizes.schemas)
        for side in sides:
            set_up(side, sizes, args.only, log)
        if "dcb" in args.only:
            dcb = set_up_dcb(args, sizes, log)
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            log(f"round {r + 1}/{args.rounds}: {', '.join(s.name for s in order)}")
            per_round.append(
                {
                    s.name: run_round(
                        s,
                        sizes,
                        args.only,
                        writers=writers,
                        places=places,
                        log=log,
                        dcb=dcb.get(s.name),
                    )
                    for s in order
                }
            )
    finally:
        writers.close()
        for side in sides:
            side.teardown()
        for dcb_side in dcb.values():
            dcb_side.teardown()
        if places is not None:
            places.drop()
    unit_of_work = next(
        (getattr(s, "unit_of_work", None) for s in sides if s.name == "esframework"), None
    )
    return per_round, unit_of_work


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = Sizes(append_snapshot_every=args.append_snapshot_every)
    if args.quick:
        sizes = sizes.quick()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    began = time.perf_counter()
    per_round, unit_of_work = run_rounds(args, sizes, log)
    summary = summarize(per_round, args.sides)
    if args.memory:
        summary["memory"] = run_memory(args.dsn, sizes.memory_events, log)
    summary["config"] = {
        "rounds": args.rounds,
        "quick": args.quick,
        "sides": args.sides,
        "scenario_groups": sorted(args.only),
        "writers": args.writers,
        "sizes": asdict(sizes),
        # Whether esframework's saves joined `store.transaction()`: if not, `unit_of_work`
        # saved its two aggregates in two transactions, and `held_open` held the store's
        # append statement open instead of a unit of work.
        "esframework_unit_of_work": unit_of_work,
        "flush_options": FLUSH_OPTIONS,
    }
    summary["environment"] = environment(args.dsn)
    summary["elapsed_s"] = time.perf_counter() - began

    print()
    print_table(summary, args.sides)
    if "memory" in summary:
        print(f"\nmemory (esframework, peak RSS growth in MB): {summary['memory']}")
    elapsed = summary["elapsed_s"]
    print(f"\n{args.rounds} round(s) in {elapsed:.0f} s; medians, higher is better.")
    if args.json:
        args.json.write_text(json.dumps(_clean(summary), indent=2) + "\n")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
