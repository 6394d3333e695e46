"""The command line, end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def courses(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.courses", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )


@pytest.fixture(params=["sqlite"])  # PostgreSQL joins as its tags land
def where(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The command-line options that choose the store."""
    if request.param == "sqlite":
        return ["--db", str(tmp_path / "courses.db")]
    dsn = request.getfixturevalue("postgres_dsn")
    return ["--dsn", dsn, "--schema", request.getfixturevalue("postgres_schema")]


def test_demo_runs_the_whole_story(where: list[str], tmp_path: Path) -> None:
    done = courses(*where, "demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("refused:") == 2
    assert "is full: its capacity is 1" in out
    assert "is taken" in out
    assert "'Algebra' 3/3" in out
    assert "StudentRegistered" in out
    assert "StudentSubscribed" in out


def test_commands_one_by_one(where: list[str], tmp_path: Path) -> None:
    for args in (
        ("define", "maths", "Maths", "1"),
        ("register", "ann", "Ann"),
        ("register", "ben", "Ben"),
        ("subscribe", "ann", "maths"),
        ("rename", "maths", "Algebra"),
        ("claim", "ann", "annie"),
    ):
        done = courses(*where, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    full = courses(*where, "subscribe", "ben", "maths", cwd=tmp_path)
    assert full.returncode == 1
    assert full.stderr == "error: course 'maths' is full: its capacity is 1\n"
    assert courses(*where, "capacity", "maths", "2", cwd=tmp_path).returncode == 0
    assert "ben: maths" in courses(*where, "subscribe", "ben", "maths", cwd=tmp_path).stdout
    assert "maths: 'Algebra' 2/2" in courses(*where, "courses", cwd=tmp_path).stdout
    activity = courses(*where, "activity", cwd=tmp_path).stdout
    assert activity.count("StudentSubscribed") == 2


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("define", "maths", "Maths", "zero"), "error: argument capacity: not a positive"),
        (("subscribe", "ann", "nope"), "error: no course 'nope'\n"),
        (("course", "nope"), "error: no course 'nope'\n"),
        (("claim", "ann", " "), "error: a username cannot be empty\n"),
        (("student", "nobody"), "error: no student 'nobody': register them first\n"),
        (("claim", "nobody", "nobo"), "error: no student 'nobody': register them first\n"),
        (("subscribe", "nobody", "nope"), "error: no course 'nope'\n"),
    ],
)
def test_errors_are_one_line(args: tuple[str, ...], error: str, tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert courses("--db", db, "register", "ann", "Ann", cwd=tmp_path).returncode == 0
    done = courses("--db", db, *args, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.startswith(error)
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_an_unknown_argument_points_at_its_commands_help(tmp_path: Path) -> None:
    """It named `python -m examples.courses --help`, which does not show what `define` takes."""
    done = courses(
        "--db", str(tmp_path / "c.db"), "define", "maths", "Maths", "2", "x", cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: unrecognized arguments: x (see python -m examples.courses define --help)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_database_file_is_one_line(tmp_path: Path) -> None:
    """A mistyped --db is refused, and not created, by the commands that read or change;
    a server that does not answer or a DSN that does not parse is one line too."""
    typo = str(tmp_path / "cuorses.db")
    for args in (("course", "maths"), ("student", "ann"), ("courses",), ("claim", "ann", "a")):
        done = courses("--db", typo, *args, cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr == (
            f"error: no database at {typo!r}: define a course (or run the demo) first, "
            "or name the file with --db\n"
        )
    assert list(tmp_path.iterdir()) == []
    for dsn, error in (
        ("not a dsn", "error: --dsn is not a connection string or URL"),
        ("postgresql://postgres@127.0.0.1:1/test", "error: cannot connect to PostgreSQL"),
    ):
        done = courses("--dsn", dsn, "courses", cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr.startswith(error)
        assert done.stderr.count("\n") == 1
    assert courses("--db", typo, "define", "maths", "Maths", "2", cwd=tmp_path).returncode == 0


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path) -> None:
    """`python -m examples.courses activity | head` prints no traceback."""
    db = str(tmp_path / "c.db")
    assert courses("--db", db, "demo", cwd=tmp_path).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.courses", "--db", db, "activity"],
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


def test_its_default_schema_is_not_the_banks() -> None:
    """`--dsn` alone keeps the courses apart from the bank's events, which would stop the
    courses' projections (their types are unknown to them) in a shared schema."""
    from examples.bank.__main__ import _parser as bank_parser
    from examples.courses.__main__ import _parser as courses_parser

    dsn = ["--dsn", "postgresql://localhost/x"]
    courses_schema = courses_parser().parse_args([*dsn, "courses"]).schema
    bank_schema = bank_parser().parse_args([*dsn, "transfers"]).schema
    assert (courses_schema, bank_schema) == ("courses", "public")
