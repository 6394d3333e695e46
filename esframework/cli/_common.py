"""What every command shares: the parser, exit codes, opening the store, loading the app."""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from esframework._subscription_store import SubscriptionStore

if TYPE_CHECKING:
    from esframework.cli._inspect import Inspector

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PROBLEMS = 3


class UsageError(Exception):
    """A bad command line found after parsing (a target or store that cannot be found)."""


class Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line.

    argparse's own report starts with the usage, which for a subcommand spans lines; the
    message names the `--help` that shows it instead. Subcommand parsers are of this class
    too (add_subparsers makes them of the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


MAX_WHOLE = 2**63 - 1  # positions, versions and counts: a signed 64-bit integer in every store
MAX_SECONDS = 86_400.0  # a day: longer waits are a typo, and a stop waits for the wait


def positive(text: str) -> int:
    """An argparse type: a whole number from 1 that every store can compare with."""
    return _whole(text, 1)


def natural(text: str) -> int:
    """An argparse type: a whole number from 0 that every store can compare with."""
    return _whole(text, 0)


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= MAX_WHOLE:
        msg = f"expected a whole number from {minimum} to {MAX_WHOLE}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def seconds(text: str) -> float:
    """An argparse type: a wait in seconds, above 0 and at most a day.

    A wait of 0 (or below, or NaN) would poll without pause; an infinite one would never
    end, and a Ctrl-C waits for the wait in hand.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:
        msg = f"expected a number of seconds above 0 and at most {MAX_SECONDS:g}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_store_options(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    """The options naming the store (one of --dsn and --db), and --json."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dsn", help="PostgreSQL connection string or URL")
    where.add_argument("--db", type=Path, help="SQLite database file")
    parser.add_argument("--schema", default="public", help="PostgreSQL schema (public)")
    if output:
        add_json_option(parser)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON lines, not text")


def add_app_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, so its event classes and upcasters are registered (repeatable)",
    )


def one_line(error: BaseException) -> str:
    """libpq's messages span lines (a hint on its own line): one line for the terminal."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[SubscriptionStore[Any]]:
    """Open the store the command line names; a store that cannot be found is a UsageError."""
    if args.db is not None:
        from esframework._sqlite import SQLiteEventStore

        path: Path = args.db
        check_sqlite_store(path)
        with SQLiteEventStore(path) as store:
            # Its connection opened first is closed last, after the inspector's read-only
            # one, which cannot: the last to close takes the -wal and -shm files away.
            store.head()
            yield store
        return
    postgres = postgres_module(args.dsn)
    with postgres.PostgresEventStore(args.dsn, schema=args.schema) as store:
        yield store


def check_sqlite_store(path: Path) -> None:
    """Raise `UsageError` unless `path` is an SQLite file holding an esframework store.

    Opening a store creates its tables: the commands never do that to a file that is not
    one already (an empty file, another application's database), nor to a missing one.
    """
    if not path.is_file():
        msg = f"no SQLite store at {str(path)!r}"
        raise UsageError(msg)
    try:
        with closing(sqlite3.connect(path)) as db:  # opening alone writes nothing
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
    except sqlite3.Error as error:
        msg = f"{str(path)!r} is not an SQLite database ({one_line(error)})"
        raise UsageError(msg) from None
    if found is None:
        msg = (
            f"{str(path)!r} holds no esframework store (it has no events table); "
            "the commands never create one"
        )
        raise UsageError(msg)


@contextmanager
def open_inspector(args: argparse.Namespace) -> Iterator[Inspector]:
    """Open the read-only queries of `_inspect` on the store the command line names."""
    from esframework.cli._inspect import PostgresInspector, SQLiteInspector

    inspector: Inspector
    if args.db is not None:
        inspector = SQLiteInspector(args.db)
    else:
        postgres_module(args.dsn)
        inspector = PostgresInspector(args.dsn, args.schema)
    try:
        yield inspector
    finally:
        inspector.close()


def postgres_module(dsn: str) -> Any:
    """`esframework.postgres`, once psycopg is known to be installed and `dsn` to parse."""
    try:
        import psycopg

        from esframework import postgres
    except ImportError:
        msg = "needs psycopg: pip install 'esframework[postgres]'"
        raise UsageError(msg) from None
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        msg = f"--dsn is not a connection string or URL: {one_line(error)}"
        raise UsageError(msg) from None
    return postgres


def import_module(module_name: str) -> object:
    """Import the user's module, looking in the working directory too.

    The console script's sys.path starts with its own directory, not the working one
    (`python -m` starts with the working one): look in the working directory either way.
    A module that is not there is a UsageError; one that fails inside raises its error.
    """
    if not all(part.isidentifier() for part in module_name.split(".")):
        msg = f"expected a module name, such as myapp.events, got {module_name!r}"
        raise UsageError(msg)
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
        raise UsageError(msg) from None


def load_target(target: str, what: str, is_one: Callable[[object], bool], *, example: str) -> Any:
    """Import `target` (MODULE:NAME) and return the object it names, or the one it builds.

    `target` names `what` (`is_one` tells), or a function of no arguments returning one.
    Errors of the target itself are usage errors; errors raised by the code it runs (a
    module that fails to import, a factory that raises) propagate with their traceback.
    """
    module_name, _, attribute = target.partition(":")
    dotted = (module_name, attribute)
    if not all(part.isidentifier() for name in dotted for part in name.split(".")):
        msg = f"expected MODULE:NAME, such as {example}, got {target!r}"
        raise UsageError(msg)
    found = import_module(module_name)
    for part in attribute.split("."):
        if not hasattr(found, part):
            msg = f"{module_name!r} has no attribute {attribute!r}"
            raise UsageError(msg)
        found = getattr(found, part)
    if is_one(found):
        return found
    if not callable(found):
        kind = type(found).__name__
        msg = f"{target} is of type {kind!r}, not {what} or a function returning one"
        raise UsageError(msg)
    try:
        inspect.signature(found).bind()
    except TypeError:
        msg = f"{target} needs arguments; name {what} or a function of no arguments"
        raise UsageError(msg) from None
    except ValueError:
        pass  # no signature to check (a builtin): calling it will tell
    built = found()
    if not is_one(built):
        msg = f"{target} returned a value of type {type(built).__name__!r}, not {what}"
        raise UsageError(msg)
    return built


def load_apps(modules: Sequence[str]) -> None:
    for name in modules:
        import_module(name)


def print_json(value: object) -> None:
    """One JSON document per line, flushed: readers may be following a live `tail`."""
    sys.stdout.write(orjson.dumps(value, default=_default).decode() + "\n")
    sys.stdout.flush()


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows under headers: a rich table on a terminal (if installed), else columns."""
    cells = [[_cell(value) for value in row] for row in rows]
    made = rich_table(headers, rows) if sys.stdout.isatty() else None
    if made is not None:
        rich_module("rich.console").Console().print(made)
        return
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Any:
    """The rows as a rich table, or None without rich."""
    rich = rich_module("rich.table")
    if rich is None:
        return None
    text = rich_module("rich.text")
    made = rich.Table(*headers)
    for row in rows:  # as Text: an error's "[...]" is not rich markup
        made.add_row(*(text.Text(_cell(value)) for value in row))
    return made


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def rich_module(name: str) -> Any:
    """Import a module of `rich`, the optional extra, or return None without it.

    Imported by name so that nothing imports rich unless a command draws on a terminal.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
