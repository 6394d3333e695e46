"""`archive` and `show --include-archived`, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from esframework import Repository
from esframework.cli import main
from tests.cli.app import Account
from tests.cli.conftest import Target


def _close_and_truncate(target: Target) -> list[object]:
    """Four accounts of 4 events (snapshots at 3): two truncated before 3, one closed."""
    target.accounts(4, deposits=3)
    accounts = Repository(Account, store=target.store)
    for number in (0, 1):
        target.store.truncate_before(f"account-{number}", 3)  # 2 events each to archive
    accounts.tombstone(accounts.load("account-2"))  # 4 events to archive
    return list(target.store.read_all())


def test_archive_moves_everything_in_batches_with_progress(target: Target) -> None:
    """Text progress per batch, then a summary; afterwards reads are unchanged."""
    everything = _close_and_truncate(target)
    result = target.run("archive", "--batch-size", "3")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "archiving 8 event(s)"
    assert re.fullmatch(r"archived 3 of 8 event\(s\), 5 left \(.*/s\)", lines[1]), lines
    assert lines[2].startswith("archived 6 of 8")
    assert lines[3].startswith("archived 8 of 8 event(s), 0 left")
    assert re.fullmatch(r"done: archived 8 event\(s\) in [\d.]+s; 0 left to archive", lines[4])
    assert list(target.store.read_all()) == everything
    again = target.run("archive")
    assert again.out.splitlines() == [
        "archiving 0 event(s)",
        again.out.splitlines()[1],
    ]
    assert again.out.splitlines()[1].startswith("done: archived 0 event(s)")


def test_archive_json_and_dry_run(target: Target) -> None:
    """--dry-run only counts; --json prints one document per step."""
    _close_and_truncate(target)
    dry = target.run("archive", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert dry.json() == [{"archivable": 8}]
    assert target.store.archivable() == 8
    result = target.run("archive", "--json", "--batch-size", "5")
    first, batch_one, batch_two, summary = result.json()
    assert first == {"archivable": 8}
    assert (batch_one["archived"], batch_one["batch"], batch_one["left"]) == (5, 5, 3)
    assert (batch_two["archived"], batch_two["left"]) == (8, 0)
    assert summary["done"] is True
    assert (summary["archived"], summary["left"]) == (8, 0)


def test_show_includes_archived_events_when_asked(target: Target) -> None:
    """`show` starts at the truncation point unless --include-archived."""
    _close_and_truncate(target)
    target.run("archive")
    shown = target.run("show", "account-0", "--json")
    assert [e["version"] for e in shown.json()] == [3, 4]
    everything = target.run("show", "account-0", "--json", "--include-archived")
    assert [e["version"] for e in everything.json()] == [1, 2, 3, 4]
    closed = target.run("show", "account-2", "--json", "--app", "tests.cli.app")
    (tombstone,) = closed.json()
    assert tombstone["event_type"] == "$StreamClosed"
    assert tombstone["decoded"]["class"] == "StreamClosed"


def test_verify_finds_no_problem_after_archiving(target: Target) -> None:
    """The archive keeps every stream whole in the global order: verify agrees."""
    _close_and_truncate(target)
    target.run("archive")
    result = target.run("verify", "--app", "tests.cli.app")
    assert result.code == 0, result.out
    assert result.out.strip().endswith("no problems")


def test_archive_on_a_schema_without_migration_6_fails_in_one_line(
    postgres_dsn: str, postgres_schema: str, capsys: object
) -> None:
    """A schema that was not migrated says what failed, in one line, with exit code 1."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(postgres_schema)))
    code = main(["archive", "--dsn", postgres_dsn, "--schema", postgres_schema])
    assert code == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.count("\n") == 1
    assert "stream_truncations" in err
