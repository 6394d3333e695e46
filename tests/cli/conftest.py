"""Runs the command line against a real store: an SQLite file or a PostgreSQL schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from esframework import Repository
from esframework.cli import main
from tests.cli.app import Account

ROOT = Path(__file__).parents[2]


@attrs.define
class Result:
    code: int
    out: str
    err: str

    def json(self) -> list[Any]:
        return [orjson.loads(line) for line in self.out.splitlines()]


@attrs.define
class Target:
    """One store under test, with what the commands need to reach it."""

    kind: str
    store: Any
    args: list[str]  # --db or --dsn/--schema
    env: dict[str, str]  # how tests/cli/app.py's runner finds the store
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def run(self, *argv: str) -> Result:
        """Call the command's main in this process, with the store's options appended."""
        for name, value in self.env.items():
            self.monkeypatch.setenv(name, value)
        if self.kind == "postgres":  # what the test appended has its positions first
            self.store.sequence()
        self.capsys.readouterr()
        code = main([*argv, *self.args])
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def spawn(self, *argv: str) -> subprocess.Popen[str]:
        """Start the real command in a process of its own."""
        return subprocess.Popen(
            [sys.executable, "-m", "esframework._cli", *argv, *self.args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sql(self, statement: str, *params: Any) -> None:
        """Run a statement by hand on the store's database: `?` placeholders, and `{s}`
        before table names (the test's schema on PostgreSQL)."""
        prefix = f'"{self.store.schema}".' if self.kind == "postgres" else ""
        statement = statement.format(s=prefix)
        if self.kind == "postgres":
            statement = statement.replace("?", "%s")
        with self.store.transaction() as connection:
            connection.execute(statement, params)

    def accounts(self, count: int, deposits: int = 2) -> None:
        repository = Repository(Account, store=self.store)
        for i in range(count):
            account = Account.open(f"account-{i}", f"owner {i}")
            for amount in range(1, deposits + 1):
                account.deposit(amount)
            repository.save(account)


@pytest.fixture(params=["sqlite", "postgres"])
def target(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Target]:
    if request.param == "sqlite":
        from esframework import SQLiteEventStore

        path = tmp_path / "events.db"
        with SQLiteEventStore(path) as store:
            store.head()  # creates the file and its tables
            env = {"ESFRAMEWORK_CLI_DB": str(path)}
            yield Target("sqlite", store, ["--db", str(path)], env, capsys, monkeypatch)
        return
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("postgres_schema")
    store = request.getfixturevalue("postgres_store")
    env = {"ESFRAMEWORK_CLI_DSN": dsn, "ESFRAMEWORK_CLI_SCHEMA": schema}
    monkeypatch.delenv("ESFRAMEWORK_CLI_DB", raising=False)
    yield Target("postgres", store, ["--dsn", dsn, "--schema", schema], env, capsys, monkeypatch)
