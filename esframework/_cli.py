"""The `esframework` console command.

Exit codes: 0 when the command did its work, 1 when it ran and failed (the database
refused, a subscription failed for good, your own code raised), 2 for a bad command line
(an unknown command or option, a target that cannot be loaded, a malformed DSN). A bad
command line is reported in one line on stderr, never as a traceback: a traceback is kept
for failures inside your code, where it is what you need.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from esframework._runner import Runner

EXIT_FAILED = 1
EXIT_USAGE = 2

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class _UsageError(Exception):
    """A bad command line found after parsing (a target that cannot be loaded)."""


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line.

    argparse's own report starts with the usage, which for a subcommand spans lines; the
    message names the `--help` that shows it instead. Subcommand parsers are of this class
    too (add_subparsers makes them of the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _log_level(text: str) -> str:
    if text.upper() not in _LOG_LEVELS:
        msg = f"unknown log level {text!r} (choose from {', '.join(_LOG_LEVELS)})"
        raise argparse.ArgumentTypeError(msg)
    return text.upper()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `esframework` command line; return its exit code."""
    parser = _Parser(prog="esframework", description="esframework tools.")
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
    run.add_argument("--log-level", type=_log_level, default="INFO", help="logging level (INFO)")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.target, args.log_level)
        return _migrate(args.dsn, args.schema)
    except _UsageError as error:
        print(f"esframework {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


def _run(target: str, log_level: str) -> int:
    import logging

    runner = _load_runner(target)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner.run()
    return 0


def _load_runner(target: str) -> Runner[Any]:
    """Import `target` (MODULE:NAME) and return the Runner it names or builds.

    Errors of the target itself are usage errors; errors raised by the code it runs (a
    module that fails to import, a factory that raises) propagate with their traceback.
    """
    import inspect

    from esframework._runner import Runner

    module_name, _, attribute = target.partition(":")
    dotted = (module_name, attribute)
    if not all(part.isidentifier() for name in dotted for part in name.split(".")):
        msg = f"expected MODULE:NAME, such as myapp.worker:runner, got {target!r}"
        raise _UsageError(msg)
    found = _import(module_name)
    for part in attribute.split("."):
        if not hasattr(found, part):
            msg = f"{module_name!r} has no attribute {attribute!r}"
            raise _UsageError(msg)
        found = getattr(found, part)
    if isinstance(found, Runner):
        return found
    if not callable(found):
        kind = type(found).__name__
        msg = f"{target} is of type {kind!r}, not a Runner or a function returning one"
        raise _UsageError(msg)
    try:
        inspect.signature(found).bind()
    except TypeError:
        msg = f"{target} needs arguments; name a Runner or a function of no arguments"
        raise _UsageError(msg) from None
    except ValueError:
        pass  # no signature to check (a builtin): calling it will tell
    runner = found()
    if not isinstance(runner, Runner):
        msg = f"{target} returned a value of type {type(runner).__name__!r}, not a Runner"
        raise _UsageError(msg)
    return runner


def _import(module_name: str) -> object:
    import importlib

    # The console script's sys.path starts with its own directory, not the working one
    # (`python -m` starts with the working one): look in the working directory either way.
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name != missing and not module_name.startswith(f"{missing}."):
            raise  # the module exists but imports one that does not: a fault of the module
        msg = f"no module named {missing!r} (looked for {module_name!r} on the Python path)"
        raise _UsageError(msg) from None


def _migrate(dsn: str, schema: str) -> int:
    try:
        import psycopg

        from esframework.postgres import migrate
    except ImportError:
        msg = "needs psycopg: pip install 'esframework[postgres]'"
        raise _UsageError(msg) from None
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        msg = f"--dsn is not a connection string or URL: {_one_line(error)}"
        raise _UsageError(msg) from None
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            applied = migrate(connection, schema)
    except psycopg.Error as error:
        print(f"esframework migrate: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    if not applied:
        print(f"schema {schema!r} is up to date: nothing to apply")
    return 0


def _one_line(error: Exception) -> str:
    """libpq's messages span lines (a hint on its own line): one line for the terminal."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
