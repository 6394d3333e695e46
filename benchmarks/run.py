"""Benchmark esframework against the `eventsourcing` library and plain psycopg on PostgreSQL.

    python benchmarks/run.py --dsn postgresql://postgres@127.0.0.1:5432/test --json out.json

Each side works in its own schema, created empty at the start and dropped at the end. The
sides take turns round by round (the order rotates each round), and the table shows the
median of the rounds. Every figure is a rate: higher is better. See README.md beside this
file for what each scenario does.
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
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    Side,
    Sizes,
    drop_schema,
    held_open_latencies,
    median,
    recreate_schema,
    run_concurrent,
)

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
    "subscription_catchup": "events/s",
    "subscription_catchup_read_model": "events/s",
    "async_create": "events/s",
    "async_load_full": "loads/s",
    "async_catchup": "events/s",
    "async_concurrent50": "events/s",
}
GROUPS = (
    "create",
    "append",
    "batch",
    "load",
    "catchup",
    "concurrent",
    "held_open",
    "subscriptions",
    "async",
)
LIVE = "live_latency"  # p50 and p99 in ms, esframework only
HELD = "held_open"  # latency results are kept apart from the rates


def make_side(name: str, dsn: str) -> Side:
    if name == "esframework":
        from _esframework_side import EsframeworkSide

        return EsframeworkSide(dsn)
    if name == PEER:
        from _eventsourcing_side import EventsourcingSide

        return EventsourcingSide(dsn)
    from _raw_side import RawSide

    return RawSide(dsn)


def run_round(
    side: Side, sizes: Sizes, groups: set[str], log: Callable[[str], None]
) -> dict[str, Any]:
    """One pass of every selected scenario on one side."""
    out: dict[str, Any] = {}

    def step(name: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = action()
        log(f"  {side.name:<13} {name:<13} {_show(value)}  ({time.perf_counter() - start:.1f} s)")
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
    if "concurrent" in groups:
        for threads in (1, sizes.concurrent_threads):
            out[f"concurrent{threads}"] = step(
                f"concurrent{threads}",
                partial(run_concurrent, side.open_writer, threads, sizes.concurrent_seconds),
            )
    if side.name == "esframework":
        out.update(run_esframework_only(side, sizes, groups, step))
    if HELD in groups:
        out[HELD] = step(
            "held_open",
            lambda: held_open_latencies(
                side.open_writer, side.hold_append_open, sizes.held_writers, sizes.held_seconds
            ),
        )
    return out


def run_esframework_only(
    side: Any, sizes: Sizes, groups: set[str], step: Callable[[str, Callable[[], Any]], Any]
) -> dict[str, Any]:
    """Scenarios with no peer: subscriptions (catch-up, with a read model, latency) and the
    asyncio API."""
    from _async_side import run_async
    from _subscriptions import catchup_rate, live_latency_ms

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
    if "async" in groups:
        out.update(step("async", lambda: run_async(side.dsn, side.schema, sizes)))
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
    if "concurrent1" in scenarios and "concurrent4" in scenarios:
        result["scaling"] = {
            s: _ratio(scenarios["concurrent4"].get(s), scenarios["concurrent1"].get(s))
            for s in sides
        }
    held = {s: [r[s][HELD] for r in per_round if HELD in r.get(s, {})] for s in sides}
    if any(held.values()):
        result["held_open_p99_ms"] = {
            s: {"baseline": median([b for b, _ in v]), "held_open": median([h for _, h in v])}
            for s, v in held.items()
            if v
        }
    live = [r["esframework"][LIVE] for r in per_round if LIVE in r.get("esframework", {})]
    if live:
        result["live_latency_ms"] = {
            "p50": median([p50 for p50, _ in live]),
            "p99": median([p99 for _, p99 in live]),
        }
    catchup = scenarios.get("catchup", {}).get("esframework")
    for name in ("subscription_catchup", "subscription_catchup_read_model"):
        if name in scenarios and catchup:
            ratios[name]["esframework/catchup"] = _ratio(scenarios[name]["esframework"], catchup)
    result["rounds"] = rounds
    return result


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
    if "scaling" in summary:
        scaling = summary["scaling"]
        rows.append(["scaling 4/1", "x", *[_fmt(scaling.get(s), 2) for s in sides], "", ""])
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
    live = summary.get("live_latency_ms")
    if live:
        print(
            f"live delivery, append to handler (ms): p50 {live['p50']:.1f}, p99 {live['p99']:.1f}"
        )
    held = summary.get("held_open_p99_ms", {})
    if held:
        print("\np99 save latency (ms) of other writers, without -> with an append held open:")
        for s, h in held.items():
            print(f"  {s:<13} {_fmt(h['baseline'], 1):>8} -> {_fmt(h['held_open'], 1)}")


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
        "--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}"
    )
    parser.add_argument(
        "--append-snapshot-every",
        type=int,
        default=Sizes.append_snapshot_every,
        help="automatic snapshot interval of the frameworks in `append` (0: never)",
    )
    args = parser.parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    args.only = {g for g in args.only.split(",") if g}
    if unknown := set(args.sides) - set(SIDES):
        parser.error(f"unknown side(s): {', '.join(sorted(unknown))}")
    if unknown := args.only - set(GROUPS):
        parser.error(f"unknown scenario group(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = Sizes(append_snapshot_every=args.append_snapshot_every)
    if args.quick:
        sizes = sizes.quick()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    began = time.perf_counter()
    sides = [make_side(name, args.dsn) for name in args.sides]
    per_round: list[dict[str, dict[str, Any]]] = []
    try:
        for side in sides:
            side.setup()
            if "catchup" in args.only:
                start = time.perf_counter()
                side.prepare_catchup(sizes.catchup)
                log(
                    f"{side.name}: stored {sizes.catchup:,} events for catchup "
                    f"in {time.perf_counter() - start:.1f} s"
                )
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            log(f"round {r + 1}/{args.rounds}: {', '.join(s.name for s in order)}")
            per_round.append({s.name: run_round(s, sizes, args.only, log) for s in order})
    finally:
        for side in sides:
            side.teardown()

    summary = summarize(per_round, args.sides)
    if args.memory:
        summary["memory"] = run_memory(args.dsn, sizes.memory_events, log)
    summary["config"] = {
        "rounds": args.rounds,
        "quick": args.quick,
        "sides": args.sides,
        "scenario_groups": sorted(args.only),
        "sizes": asdict(sizes),
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
