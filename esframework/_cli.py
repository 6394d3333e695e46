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
    args = parser.parse_args(argv)
    return _migrate(args.dsn, args.schema)


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
