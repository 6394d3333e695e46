"""On a terminal, with the optional `rich`: a progress bar and drawn tables.

rich comes with the `dev` extra (`pip install -e '.[dev]'`); without it these tests fail.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from esframework import NewEvent
from tests.cli.conftest import Target

ROOT = Path(__file__).parents[2]


def on_a_terminal(target: Target, *argv: str) -> str:
    """Run the command with a pseudo-terminal as its stdout; return what it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "esframework._cli", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _path(), **target.env, "COLUMNS": "120"},
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return drawn.decode(errors="replace")


def _path() -> str:
    """The test's own path: rich may come from a directory of its own."""
    return os.pathsep.join([str(ROOT), *os.environ.get("PYTHONPATH", "").split(os.pathsep)])


def test_rebuild_draws_a_progress_bar(target: Target) -> None:
    target.accounts(20, deposits=2)
    drawn = on_a_terminal(target, "rebuild", "tests.cli.app:runner", "totals")
    assert "━" in drawn
    assert "100%" in drawn
    assert "events/s, ETA" in drawn


def test_tables_are_drawn(target: Target) -> None:
    target.accounts(2)
    target.store.append(
        "[bold]x[/bold]", "T", [NewEvent(uuid.uuid4(), "E", 1, "{}")], expected_version=0
    )
    drawn = on_a_terminal(target, "streams", *target.args)
    assert "┃" in drawn
    assert "account-1" in drawn
    assert "[bold]x[/bold]" in drawn  # shown as it is, not as markup


def test_subscriptions_watch_draws_a_live_table_until_sigint(target: Target) -> None:
    target.accounts(1, deposits=1)
    watch = ["subscriptions", "--watch", "--interval", "0.2"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "esframework._cli", *watch, *target.args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _path(), **target.env, "COLUMNS": "120"},
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    drawn = b""
    deadline = time.monotonic() + 30
    while drawn.count(b"every 0.2 s (Ctrl-C stops)") < 2:
        assert time.monotonic() < deadline, drawn
        if select.select([leader], [], [], 1)[0]:
            drawn += os.read(leader, 65536)
    process.send_signal(signal.SIGINT)
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
    os.close(leader)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    text = drawn.decode(errors="replace")
    assert "┃" in text
    assert "SUBSCRIPTION" in text
    assert b"head: position 2" in drawn
