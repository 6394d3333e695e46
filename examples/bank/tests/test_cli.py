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


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal's message: one line on stderr, no traceback, a non-zero exit."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    return done.stderr


def test_bad_amounts_and_ids_are_one_line_errors(where: list[str], tmp_path: Path) -> None:
    """Unparseable, non-finite, absurd or too fine amounts and bad account ids are refused
    with one line and nothing is stored."""
    assert bank(*where, "open", "ann", "Ann", "EUR", cwd=tmp_path).returncode == 0
    assert bank(*where, "open", "ben", "Ben", "EUR", cwd=tmp_path).returncode == 0
    for command, amount, message in (
        ("deposit", "Infinity", "invalid amount Infinity: amounts must be finite"),
        ("deposit", "NaN", "invalid amount NaN: amounts must be finite"),
        ("deposit", "sNaN", "invalid amount sNaN: amounts must be finite"),
        ("deposit", "1e30", "amounts must be at most 1000000000"),
        ("deposit", "0.001", "at most 2 decimal places"),
        ("withdraw", "1e30", "amounts must be at most 1000000000"),
        ("withdraw", "NaN", "amounts must be finite"),
        ("deposit", "abc", "argument amount: not an amount: 'abc'"),
        ("withdraw", "abc", "argument amount: not an amount: 'abc'"),
    ):
        refused = bank(*where, command, "ann", amount, cwd=tmp_path)
        assert message in one_line_error(refused)
    # "-Infinity" looks like an option to argparse; after "--" it is the amount.
    refused = bank(*where, "deposit", "ann", "--", "-Infinity", cwd=tmp_path)
    assert "amounts must be finite" in one_line_error(refused)
    transfer = bank(*where, "transfer", "ann", "ben", "1e30", cwd=tmp_path)
    assert "amounts must be at most" in one_line_error(transfer)
    assert "not an amount" in one_line_error(
        bank(*where, "transfer", "ann", "ben", "x", cwd=tmp_path)
    )
    assert "invalid stream id ''" in one_line_error(bank(*where, "deposit", "", "5", cwd=tmp_path))
    assert "required: amount" in one_line_error(bank(*where, "deposit", "ann", cwd=tmp_path))
    assert "(Ann, open): 0 EUR" in bank(*where, "balance", "ann", cwd=tmp_path).stdout
    assert bank(*where, "transfers", cwd=tmp_path).stdout == ""


def test_an_account_under_a_transfers_id_is_refused(where: list[str], tmp_path: Path) -> None:
    """Opening an account with a transfer's id, or using a transfer as an account, is one
    clear line; a transfer to a transfer's id is refunded."""
    for args in (
        ("open", "ann", "Ann", "EUR"),
        ("open", "ben", "Ben", "EUR"),
        ("deposit", "ann", "9"),
    ):
        assert bank(*where, *args, cwd=tmp_path).returncode == 0
    done = bank(*where, "transfer", "ann", "ben", "2", cwd=tmp_path)
    transfer = done.stdout.split()[0]
    assert transfer.startswith("transfer-"), done.stdout
    taken = bank(*where, "open", transfer, "Eve", "EUR", cwd=tmp_path)
    assert f"cannot open account {transfer!r}: the id is taken by a Transfer" in one_line_error(
        taken
    )
    assert "of stream type 'Transfer'" in one_line_error(
        bank(*where, "balance", transfer, cwd=tmp_path)
    )
    refunded = bank(*where, "transfer", "ann", transfer, "3", cwd=tmp_path)
    assert refunded.returncode == 0, refunded.stderr
    assert f"failed: the destination refused: {transfer!r} is not an account" in refunded.stdout
    assert "(Ann, open): 7 EUR" in bank(*where, "balance", "ann", cwd=tmp_path).stdout


def test_forget_a_customer(where: list[str], tmp_path: Path) -> None:
    """`forget` drops the owner's name from loads and from the balances read model."""
    for args in (
        ("open", "ann-1", "Ann Ames", "EUR", "--customer", "ann"),
        ("open", "ann-2", "Ann Ames", "USD", "--customer", "ann"),
        ("open", "ben", "Ben", "EUR"),
        ("deposit", "ann-1", "10"),
    ):
        assert bank(*where, *args, cwd=tmp_path).returncode == 0
    assert "(Ann Ames, open)" in bank(*where, "balance", "ann-1", cwd=tmp_path).stdout
    done = bank(*where, "forget", "ann", "--reason", "asked to", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "forgot customer ann" in done.stdout
    for account in ("ann-1", "ann-2"):
        shown = bank(*where, "balance", account, cwd=tmp_path).stdout
        assert "((forgotten), open)" in shown
    history = bank(*where, "history", "ann-1", cwd=tmp_path).stdout
    assert "owner='(forgotten)'" in history
    assert "Ann Ames" not in history
    assert "(Ben, open)" in bank(*where, "balance", "ben", cwd=tmp_path).stdout
    assert bank(*where, "forget", "ann", cwd=tmp_path).returncode == 0  # idempotent
    refused = bank(*where, "open", "ann-3", "Ann Ames", "EUR", "--customer", "ann", cwd=tmp_path)
    assert "was forgotten" in one_line_error(refused)
    assert "1 to 200 characters" in one_line_error(bank(*where, "forget", "", cwd=tmp_path))


def test_unknown_accounts_are_errors_in_every_command(where: list[str], tmp_path: Path) -> None:
    """An id nobody opened is an error for `statement` and `history` too, not empty output."""
    assert bank(*where, "open", "ann", "Ann", "EUR", cwd=tmp_path).returncode == 0
    for command in ("balance", "statement", "history", "deposit", "close"):
        args = (command, "nobody", "5") if command == "deposit" else (command, "nobody")
        done = bank(*where, *args, cwd=tmp_path)
        assert "Account 'nobody' not found" in one_line_error(done), command
        assert done.stdout == ""


def test_a_missing_database_file_is_one_line(tmp_path: Path) -> None:
    """A mistyped --db is refused by every command but those that start a story, and the
    file is not created; a file that cannot be created says why."""
    typo = tmp_path / "bnak.db"
    for args in (
        ("balance", "ann"),
        ("statement", "ann"),
        ("history", "ann"),
        ("transfers",),
        ("deposit", "ann", "5"),
        ("forget", "ann"),
    ):
        done = bank("--db", str(typo), *args, cwd=tmp_path)
        assert f"error: no database at {str(typo)!r}: open an account" in one_line_error(done)
    assert list(tmp_path.iterdir()) == []
    nowhere = tmp_path / "no" / "such" / "bank.db"
    done = bank("--db", str(nowhere), "open", "ann", "Ann", "EUR", cwd=tmp_path)
    assert "there is no directory" in one_line_error(done)
    done = bank("--db", str(tmp_path), "balance", "ann", cwd=tmp_path)
    assert "is not a database file" in one_line_error(done)
    opened = bank("--db", str(typo), "open", "ann", "Ann", "EUR", cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr


def test_an_unknown_argument_points_at_its_commands_help(tmp_path: Path) -> None:
    """`deposit ann 5 EUR` named `python -m examples.bank --help`, which does not show what
    `deposit` takes; nothing is written."""
    done = bank("--db", str(tmp_path / "bank.db"), "deposit", "ann", "5", "EUR", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "error: unrecognized arguments: EUR (see python -m examples.bank deposit --help)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_bad_or_unreachable_dsn_is_one_line(tmp_path: Path) -> None:
    """A DSN that does not parse, or names a server that does not answer, is one line."""
    done = bank("--dsn", "not a dsn", "balance", "ann", cwd=tmp_path)
    assert "--dsn is not a connection string or URL" in one_line_error(done)
    # Port 1 on the loopback refuses at once: nothing listens there.
    done = bank("--dsn", "postgresql://postgres@127.0.0.1:1/test", "balance", "ann", cwd=tmp_path)
    assert "cannot connect to PostgreSQL" in one_line_error(done)
    assert "Connection refused" in done.stderr


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path) -> None:
    """`python -m examples.bank demo | head` prints no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.bank", "--db", str(tmp_path / "bank.db"), "demo"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # before it writes: its first flush meets a closed pipe
    with process.stderr:
        assert process.wait(timeout=60) == 1
        assert process.stderr.read() == ""
