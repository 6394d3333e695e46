"""The `esframework` command line: bad arguments get one line on stderr and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# A module of targets that are not Runners; none of them needs a store.
TARGETS = """\
number = 3
def needs_args(store):
    raise AssertionError("never called")
def returns_none():
    return None
"""


def esframework(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command; `-P` keeps the working directory off sys.path, as the console
    script does, so only the command's own lookup can find modules there."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "esframework._cli", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["nosuch"], "invalid choice: 'nosuch'"),
        (["run", "targets:number", "--bogus"], "unrecognized arguments: --bogus"),
        (["run"], "the following arguments are required: MODULE:NAME"),
        (["run", "nosuch.module:runner"], "no module named 'nosuch'"),
        (["run", "targets"], "expected MODULE:NAME"),
        (["run", ".targets:number"], "expected MODULE:NAME"),
        (["run", "targets:"], "expected MODULE:NAME"),
        (["run", "targets:nothing"], "'targets' has no attribute 'nothing'"),
        (["run", "targets:number"], "targets:number is of type 'int', not a Runner"),
        (["run", "targets:needs_args"], "targets:needs_args needs arguments"),
        (["run", "targets:returns_none"], "returned a value of type 'NoneType', not a Runner"),
        (["run", "targets:number", "--log-level", "loud"], "unknown log level 'loud'"),
        (["migrate"], "the following arguments are required: --dsn"),
        (["migrate", "--dsn", "not a dsn"], "--dsn is not a connection string"),
    ],
)
def test_a_bad_command_line_is_one_line_on_stderr(
    tmp_path: Path, args: list[str], says: str
) -> None:
    (tmp_path / "targets.py").write_text(TARGETS)
    result = esframework(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert says in result.stderr
    assert result.stderr.startswith("esframework")


def test_a_failing_import_inside_the_target_keeps_its_traceback(tmp_path: Path) -> None:
    """The target module exists but imports one that does not: that is a fault of the
    module, reported with its traceback and exit code 1, not as a missing target."""
    (tmp_path / "broken.py").write_text("import nosuch_dependency\nrunner = None\n")
    result = esframework(tmp_path, "run", "broken:runner")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "No module named 'nosuch_dependency'" in result.stderr


def test_migrate_reports_an_unreachable_server_in_one_line(tmp_path: Path) -> None:
    """A server that refuses the connection is a failure (1), not a bad command line (2)."""
    result = esframework(tmp_path, "migrate", "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("esframework migrate: ")
