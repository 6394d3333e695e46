"""The bank's application service: commands on stored accounts and transfers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from esframework import ConcurrencyError, Envelope, EventStore, Metadata, Repository
from esframework.errors import StreamTypeMismatchError
from examples.bank.domain import Account, AccountExistsError, AccountIdTakenError, Transfer

A = TypeVar("A")


class Bank:
    """Opens accounts, runs commands on them and requests transfers.

    Every command loads the aggregate, runs, and saves; on a concurrency conflict it runs
    again on the fresh state, so its rules are checked against what is really stored.

    Args:
        store: Where the accounts' and transfers' events live.
        attempts: How often a command runs before a conflict is given up on.
    """

    def __init__(self, store: EventStore, *, attempts: int = 10) -> None:
        self.store = store
        self.accounts = Repository(Account, store=store)
        self.transfers = Repository(Transfer, store=store)
        self._attempts = attempts

    def open_account(
        self, account_id: str, *, owner: str, currency: str, customer_id: str | None = None
    ) -> Account:
        account = Account.open(account_id, owner=owner, currency=currency, customer_id=customer_id)
        try:
            self.accounts.save(account)
        except ConcurrencyError as error:  # a new account expects no stream at all
            raise AccountExistsError(account_id) from error
        except StreamTypeMismatchError as error:  # the id is a transfer's: not a race, a clash
            raise AccountIdTakenError(account_id, error.actual) from error
        return account

    def deposit(self, account_id: str, amount: Decimal) -> Account:
        return self.run(self.accounts, account_id, lambda a: a.deposit(amount))

    def withdraw(self, account_id: str, amount: Decimal) -> Account:
        return self.run(self.accounts, account_id, lambda a: a.withdraw(amount))

    def freeze(self, account_id: str, reason: str) -> Account:
        return self.run(self.accounts, account_id, lambda a: a.freeze(reason))

    def close(self, account_id: str) -> Account:
        return self.run(self.accounts, account_id, Account.close)

    def request_transfer(
        self, source: str, destination: str, amount: Decimal, *, transfer_id: str | None = None
    ) -> Transfer:
        """Request a transfer; the transfer process carries it out (see process.py)."""
        currency = self.accounts.load(source).currency
        transfer = Transfer.request(
            transfer_id or f"transfer-{uuid.uuid4()}",
            source=source,
            destination=destination,
            amount=amount,
            currency=currency,
        )
        self.transfers.save(transfer)
        return transfer

    def account(self, account_id: str) -> Account:
        return self.accounts.load(account_id)

    def transfer(self, transfer_id: str) -> Transfer:
        return self.transfers.load(transfer_id)

    def history(self, account_id: str) -> Iterator[Envelope[Any]]:
        return self.accounts.history(account_id)

    def forget(self, customer_id: str, *, reason: str = "") -> None:
        """Forget a customer: their accounts' owner name reads as `FORGOTTEN_OWNER` from now
        on, in loads and (once the projections catch up) in the read models too."""
        metadata = orjson.dumps({"reason": reason} if reason else {}).decode()
        self.store.forget_personal_data(customer_id, metadata=metadata)

    def run(
        self,
        repository: Repository[A],
        aggregate_id: str,
        command: Callable[[A], None],
        *,
        metadata: Metadata | None = None,
    ) -> A:
        """Load, run `command`, save; on a conflict, again on the fresh state."""
        attempt = 1
        while True:
            aggregate = repository.load(aggregate_id)
            command(aggregate)
            try:
                repository.save(aggregate, metadata=metadata)
            except ConcurrencyError:
                if attempt == self._attempts:
                    raise
                attempt += 1
            else:
                return aggregate
