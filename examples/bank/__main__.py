"""The bank's command line: `python -m examples.bank --help`.

Runs on the SQLite file `bank.db` by default, or on PostgreSQL with `--dsn` or the
ESFRAMEWORK_DSN environment variable, with the same behaviour.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import attrs

from esframework import EsframeworkError, Runner
from examples._cli import (
    StoreNotOpenedError,
    check_store,
    parse_args,
    quiet_library_logs,
    stop_writing,
)
from examples.bank.app import Bank
from examples.bank.domain import FORGOTTEN_OWNER, BankError
from examples.bank.projections import Views
from examples.bank.worker import build, open_store


@attrs.frozen
class Cli:
    """What every command works with."""

    bank: Bank
    worker: Runner[Any]
    views: Views

    def catch_up(self) -> None:
        """Run the transfer process and the projections over everything stored."""
        self.worker.run_until_caught_up()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    quiet_library_logs()
    try:
        check_store(args.db, args.dsn, creates=args.creates, hint=NO_DATABASE)
        store = open_store(args.db, args.dsn, args.schema)
        try:
            cli = Cli(Bank(store), build(store), Views(store))
            args.run(cli, args)
            sys.stdout.flush()  # a reader that went away shows here, not at exit
        finally:
            store.close()
    except (BankError, EsframeworkError, StoreNotOpenedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        stop_writing()
        return 1
    except sqlite3.Error as error:
        print(f"error: {args.db}: {error}", file=sys.stderr)
        return 1
    return 0


NO_DATABASE = "open an account (or run the demo) first, or name the file with --db"


def _open(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.open_account(
        args.account, owner=args.owner, currency=args.currency, customer_id=args.customer
    )
    _print_balance(cli, args.account)


def _forget(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.forget(args.customer, reason=args.reason)
    cli.catch_up()  # the read models drop their copies of the customer's name
    print(f"forgot customer {args.customer}: their name reads as {FORGOTTEN_OWNER!r} from now on")


def _deposit(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.deposit(args.account, args.amount)
    _print_balance(cli, args.account)


def _withdraw(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.withdraw(args.account, args.amount)
    _print_balance(cli, args.account)


def _close(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.close(args.account)
    _print_balance(cli, args.account)


def _transfer(cli: Cli, args: argparse.Namespace) -> None:
    transfer = cli.bank.request_transfer(args.source, args.destination, args.amount)
    cli.catch_up()
    _print_transfer(cli, transfer_id(transfer))


def _balance(cli: Cli, args: argparse.Namespace) -> None:
    _print_balance(cli, args.account)


def _statement(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.account(args.account)  # an unknown id is an error, not an empty statement
    cli.catch_up()
    _print_statement(cli, args.account)


def _history(cli: Cli, args: argparse.Namespace) -> None:
    cli.bank.account(args.account)  # an unknown id is an error, not an empty history
    for envelope in cli.bank.history(args.account):
        when = envelope.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"  v{envelope.version} #{envelope.position} {when} {envelope.event}")


def _transfers(cli: Cli, _: argparse.Namespace) -> None:
    cli.catch_up()
    for transfer, source, destination, amount, currency, status, reason in cli.views.transfers():
        why = f" ({reason})" if reason else ""
        print(f"  {transfer}: {source} -> {destination} {amount} {currency} {status}{why}")


def _demo(cli: Cli, _: argparse.Namespace) -> None:
    bank, run = cli.bank, uuid.uuid4().hex[:6]
    alice, bob, carol, dave = (f"{name}-{run}" for name in ("alice", "bob", "carol", "dave"))
    print(f"Opening {alice}, {bob} and {carol} in EUR, {dave} in USD")
    for account, owner, currency in (
        (alice, "Alice", "EUR"),
        (bob, "Bob", "EUR"),
        (carol, "Carol", "EUR"),
        (dave, "Dave", "USD"),
    ):
        bank.open_account(account, owner=owner, currency=currency)
    print(f"{alice}: deposit 100.00, withdraw 30.50")
    bank.deposit(alice, Decimal("100.00"))
    bank.withdraw(alice, Decimal("30.50"))
    print(f"{bob}: try to withdraw 5.00 from an empty account ...")
    try:
        bank.withdraw(bob, Decimal("5.00"))
    except BankError as refused:
        print(f"  refused: {refused}")
    print(f"{carol}: close the (empty) account")
    bank.close(carol)
    transfers = [
        ("a transfer that succeeds", alice, bob, Decimal("25.00")),
        ("a transfer the source cannot pay", bob, alice, Decimal("500.00")),
        ("a transfer to a closed account: refunded", alice, carol, Decimal("10.00")),
        ("a transfer to another currency: refunded", alice, dave, Decimal("5.00")),
    ]
    requested = []
    for text, source, destination, amount in transfers:
        print(f"Transfer {amount} from {source} to {destination}: {text}")
        requested.append(transfer_id(bank.request_transfer(source, destination, amount)))
    print("Running the transfer process and the projections ...")
    cli.catch_up()
    for transfer in requested:
        _print_transfer(cli, transfer)
    print("Balances (read model):")
    for account, owner, currency, balance, status in cli.views.balances():
        if account.endswith(run):
            print(f"  {account} ({owner}, {status}): {balance} {currency}")
    print(f"Statement of {alice}:")
    _print_statement(cli, alice)
    print(f"Stored events of {alice}:")
    _history(cli, argparse.Namespace(account=alice))


def transfer_id(transfer: object) -> str:
    from esframework import aggregate_id

    return aggregate_id(transfer)


def _print_balance(cli: Cli, account_id: str) -> None:
    account = cli.bank.account(account_id)
    print(f"{account_id} ({account.owner}, {account.status}): {account.balance} {account.currency}")


def _print_transfer(cli: Cli, transfer_id: str) -> None:
    transfer = cli.bank.transfer(transfer_id)
    why = f": {transfer.reason}" if transfer.reason else ""
    print(f"  {transfer_id} {transfer.status}{why}")


def _print_statement(cli: Cli, account_id: str) -> None:
    for version, when, description, amount, balance in cli.views.statement(account_id):
        print(f"  v{version} {when[:19]} {amount:>10} {balance:>10}  {description}")


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        msg = f"not an amount: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line, like every other error of the bank's CLI.

    argparse's own report starts with the usage, which for a subcommand spans lines; the
    message names the `--help` that shows it instead. Subcommand parsers are of this class
    too (add_subparsers makes them of the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m examples.bank", description="A bank kept as events with esframework."
    )
    parser.add_argument("--db", default="bank.db", help="SQLite file (default: bank.db)")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESFRAMEWORK_DSN"),
        help="PostgreSQL DSN; overrides --db (default: $ESFRAMEWORK_DSN)",
    )
    parser.add_argument("--schema", default="public", help="PostgreSQL schema (default: public)")
    # Only the commands that start a story may create the database file.
    parser.set_defaults(creates=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("demo", help="run a scripted story end to end").set_defaults(
        run=_demo, creates=True
    )

    open_ = commands.add_parser("open", help="open an account")
    for name in ("account", "owner", "currency"):
        open_.add_argument(name)
    open_.add_argument(
        "--customer", help="the customer the owner's name belongs to (default: the account id)"
    )
    open_.set_defaults(run=_open, creates=True)

    forget = commands.add_parser("forget", help="forget a customer's personal data for good")
    forget.add_argument("customer")
    forget.add_argument("--reason", default="", help="why (kept with the record of it)")
    forget.set_defaults(run=_forget)

    for name, run in (("deposit", _deposit), ("withdraw", _withdraw)):
        command = commands.add_parser(name, help=f"{name} money")
        command.add_argument("account")
        command.add_argument("amount", type=_amount)
        command.set_defaults(run=run)

    transfer = commands.add_parser("transfer", help="transfer money between two accounts")
    transfer.add_argument("source")
    transfer.add_argument("destination")
    transfer.add_argument("amount", type=_amount)
    transfer.set_defaults(run=_transfer)

    for name, run, text in (
        ("balance", _balance, "show an account's balance"),
        ("statement", _statement, "show an account's statement (read model)"),
        ("history", _history, "show an account's stored events"),
        ("close", _close, "close an empty account"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("account")
        command.set_defaults(run=run)

    commands.add_parser("transfers", help="list transfers (read model)").set_defaults(
        run=_transfers
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
