"""The `esframework` console command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `esframework` command line."""
    parser = argparse.ArgumentParser(prog="esframework", description="esframework tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate = commands.add_parser("migrate", help="create or upgrade the PostgreSQL store's tables")
    migrate.add_argument("--dsn", required=True, help="PostgreSQL connection string or URL")
    migrate.add_argument("--schema", default="public", help="schema of the tables (public)")
    run = commands.add_parser("run", help="run subscriptions as a worker until SIGTERM or Ctrl-C")
    run.add_argument(
        "target",
        metavar="MODULE:NAME",
        help="a Runner, or a function that returns one, such as myapp.worker:runner",
    )
    run.add_argument("--log-level", default="INFO", help="logging level (INFO)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.target, args.log_level)
    return _migrate(args.dsn, args.schema)


def _run(target: str, log_level: str) -> int:
    import importlib
    import logging

    from esframework._runner import Runner

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        print(f"esframework run: expected MODULE:NAME, got {target!r}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    found = getattr(importlib.import_module(module_name), attribute)
    runner = found if isinstance(found, Runner) else found()
    if not isinstance(runner, Runner):
        print(f"esframework run: {target} is not a Runner", file=sys.stderr)
        return 2
    runner.run()
    return 0


def _migrate(dsn: str, schema: str) -> int:
    try:
        import psycopg

        from esframework.postgres import migrate
    except ImportError:
        print("esframework migrate needs psycopg: pip install 'esframework[postgres]'")
        return 2
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            applied = migrate(connection, schema)
    except psycopg.Error as error:
        print(f"esframework migrate: {error}", file=sys.stderr)
        return 1
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    if not applied:
        print(f"schema {schema!r} is up to date: nothing to apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
