"""The bank's command line: `python -m examples.bank --help`."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from esframework import EsframeworkError, EventStore, SQLiteEventStore
from examples.bank.app import Bank
from examples.bank.domain import BankError


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with _store(args.db, args.dsn) as store:
            bank = Bank(store)
            args.run(bank, args)
    except (BankError, EsframeworkError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _store(db: str, dsn: str | None) -> Iterator[EventStore]:
    if dsn:
        from esframework.postgres import PostgresEventStore

        with PostgresEventStore(dsn) as postgres:
            postgres.migrate()
            yield postgres
    else:
        with SQLiteEventStore(db) as sqlite:
            yield sqlite


def _demo(bank: Bank, _: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{run}", f"bob-{run}"
    print(f"Opening {alice} and {bob} in EUR")
    bank.open_account(alice, owner="Alice", currency="EUR")
    bank.open_account(bob, owner="Bob", currency="EUR")
    print(f"{alice}: deposit 100.00, withdraw 30.50")
    bank.deposit(alice, Decimal("100.00"))
    bank.withdraw(alice, Decimal("30.50"))
    print(f"{bob}: deposit 20.00")
    bank.deposit(bob, Decimal("20.00"))
    print(f"{bob}: try to withdraw 50.00 ...")
    try:
        bank.withdraw(bob, Decimal("50.00"))
    except BankError as refused:
        print(f"  refused: {refused}")
    print(f"{bob}: withdraw 20.00, then close the account")
    bank.withdraw(bob, Decimal("20.00"))
    bank.close(bob)
    for account_id in (alice, bob):
        _print_balance(bank, account_id)
    print(f"History of {alice}:")
    _print_history(bank, alice)


def _open(bank: Bank, args: argparse.Namespace) -> None:
    bank.open_account(args.account, owner=args.owner, currency=args.currency)
    _print_balance(bank, args.account)


def _deposit(bank: Bank, args: argparse.Namespace) -> None:
    bank.deposit(args.account, args.amount)
    _print_balance(bank, args.account)


def _withdraw(bank: Bank, args: argparse.Namespace) -> None:
    bank.withdraw(args.account, args.amount)
    _print_balance(bank, args.account)


def _close(bank: Bank, args: argparse.Namespace) -> None:
    bank.close(args.account)
    _print_balance(bank, args.account)


def _balance(bank: Bank, args: argparse.Namespace) -> None:
    _print_balance(bank, args.account)


def _history(bank: Bank, args: argparse.Namespace) -> None:
    _print_history(bank, args.account)


def _print_balance(bank: Bank, account_id: str) -> None:
    account = bank.account(account_id)
    print(f"{account_id} ({account.owner}, {account.status}): {account.balance} {account.currency}")


def _print_history(bank: Bank, account_id: str) -> None:
    for envelope in bank.history(account_id):
        when = envelope.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"  v{envelope.version} #{envelope.position} {when} {envelope.event}")


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        msg = f"not an amount: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.bank", description="A bank kept as events with esframework."
    )
    parser.add_argument("--db", default="bank.db", help="SQLite file (default: bank.db)")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESFRAMEWORK_DSN"),
        help="PostgreSQL DSN; overrides --db (default: $ESFRAMEWORK_DSN)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run a scripted story end to end")
    demo.set_defaults(run=_demo)

    open_ = commands.add_parser("open", help="open an account")
    open_.add_argument("account")
    open_.add_argument("owner")
    open_.add_argument("currency")
    open_.set_defaults(run=_open)

    for name, run in (("deposit", _deposit), ("withdraw", _withdraw)):
        command = commands.add_parser(name, help=f"{name} money")
        command.add_argument("account")
        command.add_argument("amount", type=_amount)
        command.set_defaults(run=run)

    for name, run, text in (
        ("balance", _balance, "show an account's balance"),
        ("history", _history, "show an account's stored events"),
        ("close", _close, "close an empty account"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("account")
        command.set_defaults(run=run)
    return parser


if __name__ == "__main__":
    sys.exit(main())
