"""Operating subscriptions: `subscriptions`, `parked list|retry|drop` and `rebuild`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Self

from esframework._partition import count_marker, is_count_marker, partition_of
from esframework._progress import Progress
from esframework._subscription_worker import SubscriptionWorker
from esframework.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_json_option,
    add_store_options,
    open_inspector,
    open_store,
    positive,
    print_json,
    rich_module,
    rich_table,
    seconds,
    table,
)
from esframework.cli._worker import load_runner


def add_commands(commands: Any) -> None:
    subscriptions = commands.add_parser(
        "subscriptions", help="every subscription's checkpoint, lag, lease and parked events"
    )
    add_store_options(subscriptions)
    subscriptions.add_argument("--watch", action="store_true", help="redraw the lag until Ctrl-C")
    subscriptions.add_argument(
        "--interval",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="seconds between redraws with --watch (2)",
    )
    subscriptions.set_defaults(handler=_subscriptions)

    parked = commands.add_parser(
        "parked", help="list, retry or drop a subscription's parked events"
    )
    actions = parked.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list the parked events")
    listing.add_argument("subscription", metavar="SUBSCRIPTION")
    add_store_options(listing)
    listing.set_defaults(handler=_parked_list)
    retry = actions.add_parser("retry", help="deliver the parked events again, oldest first")
    retry.add_argument("target", metavar="MODULE:NAME", help="the Runner running it")
    retry.add_argument("subscription", metavar="SUBSCRIPTION")
    add_json_option(retry)
    retry.set_defaults(handler=_parked_retry)
    drop = actions.add_parser("drop", help="take parked events off the list, unhandled")
    drop.add_argument("subscription", metavar="SUBSCRIPTION")
    add_store_options(drop)
    which = drop.add_mutually_exclusive_group(required=True)
    which.add_argument("--position", type=positive, help="the parked event at this position")
    which.add_argument("--all", action="store_true", help="every parked event")
    drop.set_defaults(handler=_parked_drop)

    rebuild = commands.add_parser("rebuild", help="reset a projection and replay every event")
    rebuild.add_argument("target", metavar="MODULE:NAME", help="the Runner running it")
    rebuild.add_argument("subscription", metavar="SUBSCRIPTION")
    rebuild.add_argument(
        "--every", type=float, default=1.0, help="seconds between progress lines (1)"
    )
    add_json_option(rebuild)
    rebuild.set_defaults(handler=_rebuild)


def _subscriptions(args: argparse.Namespace) -> int:
    if args.watch:
        return _watch(args)
    with open_store(args) as store, open_inspector(args) as inspector:
        head, rows = _lag_rows(store, inspector)
    if args.json:
        for row in rows:
            print_json(row)
        return EXIT_OK
    table(_LAG_HEADERS, _lag_cells(rows))
    print(f"head: position {head}")
    return EXIT_OK


def _lag_rows(store: Any, inspector: Any) -> tuple[int, list[dict[str, Any]]]:
    """The head's position, and one row per subscription: checkpoint, lag, lease, parked."""
    head: int = store.head()
    head_at = inspector.recorded_at(head) if head else None
    parked = inspector.parked_counts()
    rows: list[dict[str, Any]] = []
    checkpoints = inspector.checkpoints()
    # The partition count each partitioned subscription runs with: a rebuild that changed
    # it left the other layout's checkpoints behind, unused, no longer moving.
    positions = {c.subscription: c.position for c in checkpoints}
    for checkpoint in checkpoints:
        if is_count_marker(checkpoint.subscription):
            continue  # a partitioned subscription's recorded count, not a subscription
        partition = partition_of(checkpoint.subscription)
        base, count = (checkpoint.subscription, 1) if partition is None else partition[0::2]
        if positions.get(count_marker(base), count) != count:
            continue
        position = checkpoint.position or 0
        lag = max(head - position, 0)
        behind = 0.0
        if lag and head_at is not None:
            # From the event it handled last (or the first one) to the newest event.
            (since,) = store.read_all(after=max(position - 1, 0), limit=1)
            behind = max((head_at - since.recorded_at).total_seconds(), 0.0)
        rows.append(
            {
                "subscription": checkpoint.subscription,
                "partition": None if partition is None else f"{partition[1]}/{partition[2]}",
                "checkpoint": checkpoint.position,
                "head": head,
                "lag_events": lag,
                "lag_seconds": round(behind, 3),
                "lease_holder": inspector.lease_holder(checkpoint.subscription),
                "parked": parked.get(checkpoint.subscription, 0),
                "updated_at": checkpoint.updated_at,
            }
        )
    return head, rows


_LAG_HEADERS = (
    "SUBSCRIPTION",
    "CHECKPOINT",
    "LAG",
    "BEHIND (S)",
    "LEASE HOLDER",
    "PARKED",
    "PARTITION",
)


def _lag_cells(rows: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    return [
        (
            r["subscription"],
            r["checkpoint"],
            r["lag_events"],
            f"{r['lag_seconds']:.1f}",
            r["lease_holder"],
            r["parked"],
            r["partition"],
        )
        for r in rows
    ]


def _watch(args: argparse.Namespace) -> int:
    """Redraw the lag every --interval seconds until Ctrl-C or SIGTERM (exit 0)."""
    stopped = threading.Event()

    def stop(_: int, __: FrameType | None) -> None:
        # A flag, not an exception: raised inside a query it would leave the connection
        # mid-command. The loop looks at it between refreshes.
        stopped.set()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    live_module = None if args.json or not sys.stdout.isatty() else rich_module("rich.live")
    try:
        with open_store(args) as store, open_inspector(args) as inspector:
            if live_module is not None:
                with live_module.Live(auto_refresh=False) as live:
                    while not stopped.is_set():
                        head, rows = _lag_rows(store, inspector)
                        footer = f"head: position {head}, every {args.interval:g} s (Ctrl-C stops)"
                        drawn = rich_module("rich.console").Group(
                            rich_table(_LAG_HEADERS, _lag_cells(rows)),
                            rich_module("rich.text").Text(footer),  # Text: not highlighted
                        )
                        live.update(drawn, refresh=True)
                        stopped.wait(args.interval)
                return EXIT_OK
            while not stopped.is_set():
                head, rows = _lag_rows(store, inspector)
                if args.json:
                    for row in rows:
                        print_json(row)
                else:
                    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} head: {head}")
                    table(_LAG_HEADERS, _lag_cells(rows))
                    print(flush=True)
                stopped.wait(args.interval)
        return EXIT_OK
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _check_known(store: Any, subscription: str) -> None:
    """Raise `UsageError` if the store knows nothing of `subscription`: a mistyped name
    would show as a subscription with nothing parked."""
    if store.load_checkpoint(subscription) is None:
        msg = f"no subscription {subscription!r} in the store (no checkpoint, no parked event)"
        raise UsageError(msg)


def _parked_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        parked = store.parked(args.subscription)
        if not parked:
            _check_known(store, args.subscription)
    if args.json:
        for event in parked:
            print_json(
                {
                    "subscription": event.subscription,
                    "position": event.position,
                    "event_id": event.event_id,
                    "stream_id": event.stream_id,
                    "event_type": event.event_type,
                    "error": event.error,
                    "parked_at": event.parked_at,
                }
            )
        return EXIT_OK
    table(
        ("POSITION", "STREAM", "EVENT TYPE", "PARKED AT", "ERROR"),
        [(e.position, e.stream_id, e.event_type, e.parked_at, e.error) for e in parked],
    )
    return EXIT_OK


def _parked_drop(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        with store.transaction() as connection:
            dropped = store.unpark(
                connection, args.subscription, None if args.all else args.position
            )
        if not dropped:
            _check_known(store, args.subscription)
    if not dropped and not args.all:
        msg = f"{args.subscription!r} has no parked event at position {args.position}"
        raise UsageError(msg)
    if args.json:
        print_json({"subscription": args.subscription, "dropped": dropped})
    else:
        print(f"dropped {dropped} parked event(s) of {args.subscription!r}")
    return EXIT_OK


def _worker_of(target: str, subscription: str) -> SubscriptionWorker[Any]:
    runner = load_runner(target)
    worker = runner.workers.get(subscription)
    if worker is None:
        names = ", ".join(sorted(runner.workers)) or "none"
        msg = f"{target} runs no subscription {subscription!r} (it runs: {names})"
        raise UsageError(msg)
    return worker


def _parked_retry(args: argparse.Namespace) -> int:
    worker = _worker_of(args.target, args.subscription)
    try:
        before = len(worker.store.parked(args.subscription))
        failed = worker.retry_parked()
    finally:
        worker.store.close()
    if args.json:
        print_json(
            {
                "subscription": args.subscription,
                "retried": before,
                "failed": [{"position": e.position, "stream_id": e.stream_id} for e in failed],
            }
        )
    else:
        print(f"retried {before} parked event(s) of {args.subscription!r}: {len(failed)} failed")
        for event in failed:
            print(f"  still parked: position {event.position} ({event.stream_id})")
    return EXIT_FAILED if failed else EXIT_OK


def _rebuild(args: argparse.Namespace) -> int:
    worker = _worker_of(args.target, args.subscription)
    if not hasattr(worker.subscription.handler, "reset"):
        msg = f"subscription {args.subscription!r} has no projection to reset"
        raise UsageError(msg)
    show = _ProgressDisplay(args.json, args.every)

    def stop(_: int, __: FrameType | None) -> None:
        worker.stopper.set()  # the worker stops after the page in hand

    previous = {number: signal.signal(number, stop) for number in _SIGNALS}
    try:
        with show:
            worker.rebuild(on_progress=show.update)
    finally:
        worker.store.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    last = show.last
    if last is None or not last.caught_up:
        at = 0 if last is None else last.position
        print(
            f"esframework rebuild: stopped at position {at} before the end: the read model is "
            "incomplete; rebuild again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def describe(progress: Progress) -> dict[str, Any]:
    """A rebuild's progress report with the figures people read: percentage and ETA."""
    done = 100.0 if progress.head == 0 else min(100.0, 100 * progress.position / progress.head)
    eta = progress.lag / progress.rate if progress.rate > 0 else None
    return {
        "subscription": progress.subscription,
        "position": progress.position,
        "head": progress.head,
        "handled": progress.handled,
        "parked": progress.parked,
        "elapsed": round(progress.elapsed, 3),
        "rate": round(progress.rate, 1),
        "percent": round(done, 1),
        "eta": None if eta is None else round(eta, 1),
        "caught_up": progress.caught_up,
    }


class _ProgressDisplay:
    """Shows a rebuild's `Progress` reports: a rich bar on a terminal, else lines."""

    def __init__(self, as_json: bool, every: float) -> None:
        self.last: Progress | None = None
        self._json = as_json
        self._every = every
        self._printed = 0.0
        self._bar: Any = None
        self._task: Any = None
        rich = None if as_json or not sys.stdout.isatty() else rich_module("rich.progress")
        if rich is not None:
            self._bar = rich.Progress(
                rich.TextColumn("{task.description}"),
                rich.BarColumn(),
                rich.TaskProgressColumn(),
                # The rate and time left of the rebuild's own reports, not rich's estimates.
                rich.TextColumn("{task.fields[rate]} events/s, ETA {task.fields[eta]}"),
            )

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, progress: Progress) -> None:
        first = self.last is None
        self.last = progress
        figures = describe(progress)
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(
                    progress.subscription, total=None, rate="0", eta="-"
                )
            self._bar.update(
                self._task,
                total=max(progress.head, 1),
                completed=progress.head if progress.caught_up else progress.position,
                rate=f"{figures['rate']:.0f}",
                eta=_eta(figures, done=progress.caught_up),
            )
            return
        now = time.monotonic()
        if not (first or progress.caught_up or now - self._printed >= self._every):
            return
        self._printed = now
        if self._json:
            print_json(figures)
            return
        state = "done" if progress.caught_up else f"ETA {_eta(figures, done=False)}"
        print(
            f"{progress.subscription}: {figures['percent']:5.1f}% position {progress.position} "
            f"of {progress.head}, {progress.handled} events, {figures['rate']:.0f} events/s, "
            f"{progress.parked} parked, {state}",
            flush=True,
        )


def _eta(figures: dict[str, Any], *, done: bool) -> str:
    if done:
        return "0s"
    return "-" if figures["eta"] is None else f"{figures['eta']:.0f}s"
