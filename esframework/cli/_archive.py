"""`archive`: move the events of closed and truncated streams to the archive table."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from esframework.cli._common import (
    EXIT_OK,
    UsageError,
    add_store_options,
    open_inspector,
    open_store,
    positive,
    print_json,
)

_BUSY = -1  # what an archiving pass returns while another one runs (PostgreSQL)
_BUSY_WAIT = 1.0


@runtime_checkable
class _Archiving(Protocol):
    def archive(self, *, max_events: int = ...) -> int: ...

    def archivable(self) -> int: ...


def add_commands(commands: Any) -> None:
    archive = commands.add_parser(
        "archive", help="move the events of closed and truncated streams to the archive table"
    )
    add_store_options(archive)
    archive.add_argument(
        "--batch-size",
        type=positive,
        default=5000,
        metavar="EVENTS",
        help="events moved per transaction (5000)",
    )
    archive.add_argument(
        "--dry-run", action="store_true", help="only count the events waiting to be archived"
    )
    archive.set_defaults(handler=_archive)


def _archive(args: argparse.Namespace) -> int:
    stopped = threading.Event()

    def stop(_: int, __: FrameType | None) -> None:
        # Between batches: each batch is its own transaction, so stopping loses nothing.
        stopped.set()

    previous = {number: signal.signal(number, stop) for number in _SIGNALS}
    try:
        # The inspector connects at once: an unreachable server fails in one line, now,
        # with its own reason (the store's pool would wait for a connection first).
        with open_store(args) as store, open_inspector(args):
            if not isinstance(store, _Archiving):  # pragma: no cover -- both stores archive
                msg = "this store cannot archive"
                raise UsageError(msg)
            return _run(store, args, stopped)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run(store: _Archiving, args: argparse.Namespace, stopped: threading.Event) -> int:
    waiting = store.archivable()
    if args.dry_run:
        _report(args, {"archivable": waiting}, f"{waiting} event(s) to archive")
        return EXIT_OK
    _report(args, {"archivable": waiting}, f"archiving {waiting} event(s)")
    started = time.monotonic()
    total = 0
    while not stopped.is_set():
        moved = store.archive(max_events=args.batch_size)
        if moved == _BUSY:
            _report(args, {"waiting": True}, "another archiving pass is running: waiting")
            stopped.wait(_BUSY_WAIT)
            continue
        if moved == 0:
            break
        total += moved
        elapsed = max(time.monotonic() - started, 1e-9)
        left = max(waiting - total, 0)
        _report(
            args,
            {"archived": total, "batch": moved, "left": left, "rate": round(total / elapsed)},
            f"archived {total} of {waiting} event(s), {left} left ({total / elapsed:,.0f}/s)",
        )
    elapsed = time.monotonic() - started
    left = store.archivable()
    done = "stopped" if stopped.is_set() else "done"
    _report(
        args,
        {"done": not stopped.is_set(), "archived": total, "left": left, "seconds": elapsed},
        f"{done}: archived {total} event(s) in {elapsed:.1f}s; {left} left to archive",
    )
    return EXIT_OK


def _report(args: argparse.Namespace, fields: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(fields)
    else:
        print(text)
        sys.stdout.flush()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
