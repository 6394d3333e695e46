"""The command line, end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def bank(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.bank", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The command-line options that choose the store."""
    if request.param == "sqlite":
        return ["--db", str(tmp_path / "bank.db")]
    dsn = request.getfixturevalue("postgres_dsn")
    return ["--dsn", dsn, "--schema", request.getfixturevalue("postgres_schema")]


def test_demo_runs_the_whole_story(where: list[str], tmp_path: Path) -> None:
    """`demo` opens accounts, moves money, runs transfers and prints the read models."""
    done = bank(*where, "demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "refused: cannot withdraw 5.00 EUR" in out
    assert out.count(" completed") == 1
    assert "failed: the destination refused: the account is closed" in out
    assert "failed: the destination refused: the account is in USD, not EUR" in out
    assert "(Alice, open): 44.50 EUR" in out


def test_commands_one_by_one(where: list[str], tmp_path: Path) -> None:
    """Each subcommand does its one thing; rule violations exit 1 with the reason."""
    for args in (
        ("open", "ann", "Ann", "EUR"),
        ("open", "ben", "Ben", "EUR"),
        ("deposit", "ann", "80"),
        ("withdraw", "ann", "5.50"),
    ):
        assert bank(*where, *args, cwd=tmp_path).returncode == 0
    refused = bank(*where, "withdraw", "ann", "1000", cwd=tmp_path)
    assert refused.returncode == 1
    assert "error: cannot withdraw 1000" in refused.stderr
    transfer = bank(*where, "transfer", "ann", "ben", "20", cwd=tmp_path)
    assert "completed" in transfer.stdout
    assert "(Ann, open): 54.50 EUR" in bank(*where, "balance", "ann", cwd=tmp_path).stdout
    statement = bank(*where, "statement", "ann", cwd=tmp_path).stdout
    assert "transfer to ben" in statement
    assert "54.50" in statement
    assert "TransferDebited" in bank(*where, "history", "ann", cwd=tmp_path).stdout
    assert " completed" in bank(*where, "transfers", cwd=tmp_path).stdout
    missing = bank(*where, "balance", "nobody", cwd=tmp_path)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
