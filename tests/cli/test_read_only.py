"""The commands that only read an SQLite store leave its file as it was, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from esframework import Repository, SQLiteEventStore
from esframework.cli import main
from tests.cli.app import Account, runner


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.mark.parametrize(
    "command",
    [
        ["subscriptions"],
        ["subscriptions", "--json"],
        ["parked", "list", "totals"],
        ["streams"],
        ["show", "acc-1"],
        ["verify", "--app", "tests.cli.app"],
    ],
    ids=" ".join,
)
def test_a_reading_command_leaves_the_file_untouched(
    tmp_path: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening the store set the schema's version again in a write transaction, on every
    open: each read rewrote the file's header (a backup's copy too), and a file the reader
    may not write to could not be read at all."""
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        repository = Repository(Account, store=store)
        for account_id in ("acc-1", "acc-2"):
            account = Account.open(account_id, "owner")
            account.deposit(13)  # the projection parks it
            repository.save(account)
    monkeypatch.setenv("ESFRAMEWORK_CLI_DB", str(path))
    built = runner()
    try:
        built.run_until_caught_up()
    finally:
        built.workers["totals"].store.close()
    before = _files(tmp_path)
    assert "events.db-wal" not in before  # all of it is in the file itself
    capsys.readouterr()
    assert main([*command, "--db", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out
    assert err == "" or command[0] == "verify"
    assert _files(tmp_path) == before
