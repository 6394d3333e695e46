"""What the examples' command lines share: one line, never a traceback, for a store that
cannot be opened (a mistyped file name, a missing driver, a DSN that does not parse or a
server that does not answer)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# How long the check waits for a PostgreSQL server that does not answer.
CONNECT_TIMEOUT_SECONDS = 10


class StoreNotOpenedError(Exception):
    """The store the command line names cannot be opened; the message says why."""


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, but an argument the command does not take (`deposit ann 5
    EUR`) is reported by the command's parser, whose `--help` lists what it takes."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        commands = [
            action
            for action in parser._actions  # noqa: SLF001 (argparse keeps subcommands only here)
            if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
        ]
        chosen = [c.choices[getattr(args, c.dest)] for c in commands if hasattr(args, c.dest)]
        (chosen[0] if chosen else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def quiet_library_logs() -> None:
    """Keep libraries' retry logs (psycopg_pool's failed connections) off the terminal.

    With no handler configured, Python's last-resort handler would print them as lines of
    their own; the command's one `error:` line says what failed.
    """
    if not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())


def stop_writing() -> None:
    """The reader of stdout stopped (`| head`): end quietly, as a program killed by SIGPIPE.

    Output still buffered goes nowhere, so the interpreter's last flush at exit does not
    report the closed pipe either.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def check_store(db: str, dsn: str | None, *, creates: bool, hint: str) -> None:
    """Raise `StoreNotOpenedError` unless the store the command line names can be opened.

    Args:
        db: The SQLite file, used when `dsn` is empty.
        dsn: The PostgreSQL DSN, if one was given.
        creates: Whether the command may create a SQLite file that is not there; one that
            only reads or changes what is stored refuses instead, naming the file.
        hint: What to do about a missing file, for its message.
    """
    if dsn:
        _check_postgres(dsn)
        return
    path = Path(db)
    if path.is_file():
        return
    if path.exists():
        msg = f"{db!r} is not a database file"
        raise StoreNotOpenedError(msg)
    if not creates:
        msg = f"no database at {db!r}: {hint}"
        raise StoreNotOpenedError(msg)
    if not path.absolute().parent.is_dir():
        msg = f"cannot create {db!r}: there is no directory {str(path.parent)!r}"
        raise StoreNotOpenedError(msg)


def _check_postgres(dsn: str) -> None:
    try:
        import psycopg
    except ImportError:
        msg = "--dsn needs psycopg: pip install -e '.[postgres]'"
        raise StoreNotOpenedError(msg) from None
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        msg = f"--dsn is not a connection string or URL: {_one_line(error)}"
        raise StoreNotOpenedError(msg) from None
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except psycopg.Error as error:
        msg = f"cannot connect to PostgreSQL: {_one_line(error)}"
        raise StoreNotOpenedError(msg) from None


def _one_line(error: BaseException) -> str:
    """libpq's messages span lines (a hint on its own line): one line for the terminal."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__
