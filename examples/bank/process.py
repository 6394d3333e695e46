"""The transfer process: moves money for each requested transfer, one step per event.

Requested -> debit the source -> credit the destination -> complete. If the source cannot pay,
the transfer fails; if the destination cannot accept (closed, frozen, another currency,
missing), the source is refunded and the transfer fails with the reason.

It runs as a subscription, so it sees each event at least once. Every step is idempotent on
the aggregate it changes (an account remembers the transfers it was debited, credited or
refunded for), so a redelivered event never moves money twice.
"""

from __future__ import annotations

from typing import Any

from esframework import AggregateNotFoundError, Envelope, Metadata, Subscription
from esframework.errors import StreamTypeMismatchError
from examples.bank.app import Bank
from examples.bank.domain import (
    BankError,
    TransferCredited,
    TransferDebited,
    TransferRefunded,
    TransferRequested,
)

STEPS = (TransferRequested, TransferDebited, TransferCredited, TransferRefunded)

# What makes an account refuse a step: a rule, no such account, or an id that names another
# kind of aggregate (a transfer's id given as the destination). Anything else is a fault, and
# stops the subscription rather than failing the transfer.
REFUSALS = (BankError, AggregateNotFoundError, StreamTypeMismatchError)


def _why(refused: Exception) -> str:
    if isinstance(refused, StreamTypeMismatchError):
        return f"{refused.stream_id!r} is not an account but a {refused.actual}"
    return str(refused)


class TransferProcess:
    """Reacts to each step of a transfer with the next command."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank

    def __call__(self, envelope: Envelope[Any], _connection: object) -> None:
        bank, step = self._bank, envelope.event
        caused = Metadata.caused_by(envelope)
        if isinstance(step, TransferRequested):
            transfer_id = envelope.stream_id
            if bank.transfer(transfer_id).status != "requested":
                return  # a redelivery of a transfer that already ended: nothing to debit
            try:
                bank.run(
                    bank.accounts,
                    step.source,
                    lambda a: a.debit_for_transfer(
                        transfer_id,
                        destination=step.destination,
                        amount=step.amount,
                        currency=step.currency,
                    ),
                    metadata=caused,
                )
            except REFUSALS as refused:
                reason = _why(refused)
                bank.run(bank.transfers, transfer_id, lambda t: t.fail(reason), metadata=caused)
        elif isinstance(step, TransferDebited):
            source = envelope.stream_id
            try:
                bank.run(
                    bank.accounts,
                    step.destination,
                    lambda a: a.credit_from_transfer(
                        step.transfer_id, source=source, amount=step.amount, currency=step.currency
                    ),
                    metadata=caused,
                )
            except REFUSALS as refused:
                reason = f"the destination refused: {_why(refused)}"
                bank.run(
                    bank.accounts,
                    source,
                    lambda a: a.refund_transfer(step.transfer_id, reason=reason),
                    metadata=caused,
                )
        elif isinstance(step, TransferCredited):
            bank.run(bank.transfers, step.transfer_id, lambda t: t.complete(), metadata=caused)
        elif isinstance(step, TransferRefunded):
            bank.run(
                bank.transfers, step.transfer_id, lambda t: t.fail(step.reason), metadata=caused
            )


def transfer_process(bank: Bank) -> Subscription[Any]:
    """The subscription that runs transfers."""
    return Subscription(
        name="bank-transfer-process", handler=TransferProcess(bank), event_types=STEPS
    )
