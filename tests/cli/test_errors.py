"""Every new command fails in one line with its documented exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
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
