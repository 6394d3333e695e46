"""Every new command fails in one line with its documented exit code, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def esframework(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esframework._cli", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


UNREACHABLE = ["--dsn", "postgresql://nobody@127.0.0.1:1/none"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["streams", "--db", "nosuch.db"], 2, "no SQLite store at 'nosuch.db'"),
        (["verify", "--db", "nosuch.db"], 2, "no SQLite store at 'nosuch.db'"),
        (["streams"], 2, "one of the arguments --dsn --db is required"),
        (["streams", "--db", "x", "--limit", "0"], 2, "expected a whole number from 1"),
        (["show", "s", "--dsn", "not a dsn"], 2, "--dsn is not a connection string"),
        (["verify", "--db", "x", "--app", "nosuch_app"], 2, "no module named 'nosuch_app'"),
        (["parked", "drop", "s", "--db", "x"], 2, "one of the arguments --position --all"),
        (["rebuild", "nosuch:runner", "s"], 2, "no module named 'nosuch'"),
        (["streams", *UNREACHABLE], 1, "Connection refused"),
        (["subscriptions", *UNREACHABLE], 1, "Connection refused"),
        (["verify", *UNREACHABLE], 1, "Connection refused"),
        (["archive", "--db", "nosuch.db"], 2, "no SQLite store at 'nosuch.db'"),
        (["archive", "--db", "x", "--batch-size", "0"], 2, "expected a whole number from 1"),
        (["archive", *UNREACHABLE], 1, "Connection refused"),
    ],
)
def test_a_failing_command_is_one_line_on_stderr(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    result = esframework(tmp_path, *args)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert says in result.stderr
    assert result.stderr.startswith("esframework ")


HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ["tail", "--after", HUGE],
        ["show", "s", "--from-version", HUGE],
        ["show", "s", "--limit", HUGE],
        ["streams", "--limit", HUGE],
        ["archive", "--batch-size", HUGE],
        ["parked", "drop", "s", "--position", HUGE],
        ["parked", "drop", "s", "--position", "-1"],
    ],
)
def test_a_number_no_store_can_compare_with_is_a_bad_command_line(
    tmp_path: Path, args: list[str]
) -> None:
    """Past 2**63 - 1, SQLite raised "OverflowError: Python int too large to convert to
    SQLite INTEGER" (exit 1, after `archive` had printed its first line)."""
    result = esframework(tmp_path, *args, "--db", "x")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "expected a whole number from" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["tail", "--poll", "0"],
        ["tail", "--poll", "-1"],
        ["tail", "--poll", "nan"],
        ["tail", "--poll", "inf"],
        ["tail", "--poll", "1e300"],
        ["subscriptions", "--watch", "--interval", "inf"],
        ["subscriptions", "--watch", "--interval", "1e300"],
    ],
)
def test_a_wait_that_never_ends_or_never_waits_is_a_bad_command_line(
    tmp_path: Path, args: list[str]
) -> None:
    """`tail --poll 0` (or -1, or nan) polled at 100% CPU; `--poll inf` never woke, so
    Ctrl-C and SIGTERM did not stop it; `--interval inf` failed with an OverflowError."""
    result = esframework(tmp_path, *args, "--db", "x")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "expected a number of seconds above 0" in result.stderr


NOT_A_STORE = {
    "an empty file": b"",
    "a text file": b"not a database\n",
    "another application's database": None,  # made with sqlite3 below
}
COMMANDS = [
    ["streams"],
    ["show", "s"],
    ["tail", "--after", "0"],
    ["subscriptions"],
    ["parked", "list", "s"],
    ["parked", "drop", "s", "--all"],
    ["verify"],
    ["archive"],
    ["forget", "someone"],
    ["purge-keys"],
]


@pytest.mark.parametrize("kind", list(NOT_A_STORE))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_file_that_is_no_store_is_left_as_it_is(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    """Every command opened such a file as a store, which created esframework's tables in
    it (in another application's database too) and went on as on an empty store: `forget`
    wrote an event into it. `streams` failed with "OperationalError: no such table"."""
    path = tmp_path / "app.db"
    content = NOT_A_STORE[kind]
    if content is None:
        with closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
            db.commit()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    result = esframework(tmp_path, *command, "--db", "app.db")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "'app.db'" in result.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


@pytest.mark.parametrize(
    ("args", "command", "unknown"),
    [
        (["streams", "--db", "app.db", "--bogus"], "streams", "--bogus"),
        (["parked", "retry", "app:runner", "s", "--db", "app.db"], "parked retry", "--db app.db"),
        (["rebuild", "app:runner", "s", "extra"], "rebuild", "extra"),
    ],
)
def test_an_unknown_argument_is_reported_by_its_command(
    tmp_path: Path, args: list[str], command: str, unknown: str
) -> None:
    """The top-level parser said "esframework: error: unrecognized arguments: --db (see
    esframework --help)", whose help does not list any command's options."""
    result = esframework(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"esframework {command}: error: unrecognized arguments: {unknown} "
        f"(see esframework {command} --help)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_importing_the_package_or_the_command_never_imports_rich() -> None:
    code = "import sys, esframework, esframework.cli; assert 'rich' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(ROOT)}, check=True)


def test_python_dash_m_esframework_is_the_console_command(tmp_path: Path) -> None:
    """`python -m esframework` works where the console script is not on PATH."""
    done = subprocess.run(
        [sys.executable, "-m", "esframework", "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: esframework ")
