"""Telling a handler's own failure from a lost connection or lease, which is retried."""

from __future__ import annotations

from esframework._personal._sealing import Keys
from esframework.errors import LeaseLostError, StoreUnavailableError

__all__ = ["HandlerFailedError", "delivery_failure"]


class HandlerFailedError(Exception):
    """Carries what a handler raised (or what decoding its event raised) out of a transaction.

    Failures of the delivery itself (a lost connection or lease) are the framework's own and
    are not wrapped: they are retried from the checkpoint, not charged to the event.
    """

    def __init__(self, error: Exception, keys: Keys | None = None) -> None:
        super().__init__(repr(error))
        self.error = error
        # The keys the event was decoded with: what the handler saw, and may have quoted.
        self.keys = keys


def delivery_failure(error: BaseException) -> StoreUnavailableError | LeaseLostError | None:
    """Return the lost connection or lease behind a handler's error, if there is one.

    A handler's own store calls (its repository's load and save, a second store) raise
    these when the store cannot be reached; a handler may also wrap them in errors of its
    own. Either way, retrying the event later is what helps, not parking it.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (StoreUnavailableError, LeaseLostError)):
            return current
        seen.add(id(current))
        if current.__cause__ is None and current.__suppress_context__:
            return None  # `raise ... from None`: the handler says it is not the cause
        current = current.__cause__ or current.__context__
    return None
