"""The `esframework` console command: run the application, and look inside its store.

Commands: `migrate` and `run` (see `_worker`), `streams`, `show` and `tail` (`_browse`),
`subscriptions`, `parked` and `rebuild` (`_operate`), `verify` (`_verify`), `archive`
(`_archive`), and `forget` and `purge-keys` (`_personal`).

Exit codes:

- 0: the command did its work (`tail` stopped by Ctrl-C or SIGTERM included);
- 1: it ran and failed: the database refused or is unreachable, a subscription failed, the
  application's code raised, a rebuild was stopped before it finished;
- 2: a bad command line: an unknown command or option, a module or target that cannot be
  found, a malformed DSN, an SQLite file that does not exist or holds no store, a number
  out of range, an unknown stream or
  subscription, an invalid data subject id;
- 3: `verify` found problems in the store.

A reader that stops early (`esframework show ... | head`) ends the command quietly, with 1.

Errors are one line on stderr, never a traceback, except for `run`: a worker failing inside
the application's code keeps its traceback, where it is what you need.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from esframework.cli import _archive, _browse, _operate, _personal, _verify, _worker
from esframework.cli._common import EXIT_FAILED, EXIT_USAGE, Parser, UsageError, one_line

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `esframework` command line; return its exit code."""
    parser = Parser(prog="esframework", description="esframework tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _worker.add_commands(commands)
    _browse.add_commands(commands)
    _operate.add_commands(commands)
    _verify.add_commands(commands)
    _archive.add_commands(commands)
    _personal.add_commands(commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser: its --help is the one that lists its options
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "tracebacks", False) and not logging.getLogger().handlers:
        # Libraries log what they retry (psycopg_pool a failed connection) and Python's
        # last-resort handler would print it: the command's own line says what failed.
        logging.getLogger().addHandler(logging.NullHandler())
    name = args.command if args.command != "parked" else f"parked {args.action}"
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
    except BrokenPipeError:
        _stop_writing()
        return EXIT_FAILED
    except UsageError as error:
        print(f"esframework {name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        if getattr(args, "tracebacks", False):
            raise
        print(f"esframework {name}: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    return code


def _command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The (sub)command's parser that parsed `args`: `parked retry`'s for `parked retry ...`."""
    while True:
        chosen = [
            action.choices[getattr(args, action.dest)]
            for action in parser._actions  # noqa: SLF001 (argparse keeps subcommands only here)
            if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
            and getattr(args, action.dest, None) in action.choices
        ]
        if not chosen:
            return parser
        parser = chosen[0]


def _stop_writing() -> None:
    """The reader of stdout stopped (`| head`): end quietly, as a program killed by SIGPIPE.

    Output still buffered goes nowhere, so the interpreter's last flush at exit does not
    report the closed pipe either.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
