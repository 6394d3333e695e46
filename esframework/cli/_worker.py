"""Running the application: `migrate` and `run`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from esframework.cli._common import (
    EXIT_FAILED,
    load_target,
    one_line,
    postgres_module,
)

if TYPE_CHECKING:
    from esframework._runner import Runner

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def add_commands(commands: Any) -> None:
    migrate = commands.add_parser("migrate", help="create or upgrade the PostgreSQL store's tables")
    migrate.add_argument("--dsn", required=True, help="PostgreSQL connection string or URL")
    migrate.add_argument("--schema", default="public", help="schema of the tables (public)")
    migrate.set_defaults(handler=lambda args: _migrate(args.dsn, args.schema))
    run = commands.add_parser("run", help="run subscriptions as a worker until SIGTERM or Ctrl-C")
    run.add_argument(
        "target",
        metavar="MODULE:NAME",
        help="a Runner, or a function that returns one, such as myapp.worker:runner",
    )
    run.add_argument("--log-level", type=_log_level, default="INFO", help="logging level (INFO)")
    run.set_defaults(handler=lambda args: _run(args.target, args.log_level), tracebacks=True)


def _log_level(text: str) -> str:
    if text.upper() not in _LOG_LEVELS:
        msg = f"unknown log level {text!r} (choose from {', '.join(_LOG_LEVELS)})"
        raise argparse.ArgumentTypeError(msg)
    return text.upper()


def _run(target: str, log_level: str) -> int:
    import logging

    runner = load_runner(target)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner.run()
    return 0


def load_runner(target: str) -> Runner[Any]:
    """Import `target` (MODULE:NAME) and return the Runner it names or builds."""
    from esframework._runner import Runner

    runner: Runner[Any] = load_target(
        target, "a Runner", lambda found: isinstance(found, Runner), example="myapp.worker:runner"
    )
    return runner


def _migrate(dsn: str, schema: str) -> int:
    postgres = postgres_module(dsn)  # psycopg is there, and the DSN parses
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            applied = postgres.migrate(connection, schema)
    except psycopg.Error as error:
        print(f"esframework migrate: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    if not applied:
        print(f"schema {schema!r} is up to date: nothing to apply")
    return 0
