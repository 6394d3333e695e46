"""The bank's application service: runs commands against stored accounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from esframework import ConcurrencyError, Envelope, EventStore, Repository
from examples.bank.domain import Account


class Bank:
    """Opens accounts and runs commands on them, retrying on concurrent changes.

    Args:
        store: Where the accounts' events live.
        attempts: How often a command is retried on fresh state after a concurrency conflict.
    """

    def __init__(self, store: EventStore, *, attempts: int = 5) -> None:
        self.accounts = Repository(Account, store=store)
        self._attempts = attempts

    def open_account(self, account_id: str, *, owner: str, currency: str) -> Account:
        account = Account.open(account_id, owner=owner, currency=currency)
        self.accounts.save(account)
        return account

    def deposit(self, account_id: str, amount: Decimal) -> Account:
        return self._run(account_id, lambda account: account.deposit(amount))

    def withdraw(self, account_id: str, amount: Decimal) -> Account:
        return self._run(account_id, lambda account: account.withdraw(amount))

    def freeze(self, account_id: str, reason: str) -> Account:
        return self._run(account_id, lambda account: account.freeze(reason))

    def close(self, account_id: str) -> Account:
        return self._run(account_id, Account.close)

    def account(self, account_id: str) -> Account:
        return self.accounts.load(account_id)

    def history(self, account_id: str) -> Iterator[Envelope[Any]]:
        return self.accounts.history(account_id)

    def _run(self, account_id: str, command: Callable[[Account], None]) -> Account:
        # Optimistic concurrency: on a conflict, the command runs again on the fresh state,
        # so its rules are checked against what is really stored.
        attempt = 1
        while True:
            account = self.accounts.load(account_id)
            command(account)
            try:
                self.accounts.save(account)
            except ConcurrencyError:
                if attempt == self._attempts:
                    raise
                attempt += 1
            else:
                return account
