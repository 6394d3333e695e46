"""Given past events, when a command runs, then expect these events, or this error."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Generic, TypeVar

from esframework._aggregates import (
    aggregate_type,
    mark_applied,
    pending_events,
    replayed,
)

__all__ = ["Outcome", "Scenario", "scenario"]

A = TypeVar("A")


def scenario(aggregate_class: type[A], aggregate_id: str = "aggregate-under-test") -> Scenario[A]:
    """Start a test of `aggregate_class`'s rules.

    Example:
        ```python
        scenario(Account).given(
            AccountOpened(owner="Ada", currency="EUR"),
        ).when(
            lambda account: account.withdraw(Decimal(5)),
        ).then_raises(InsufficientFundsError)
        ```
    """
    return Scenario(aggregate_class, aggregate_id)


class Scenario(Generic[A]):
    """An aggregate built from past events, ready for a command."""

    def __init__(self, aggregate_class: type[A], aggregate_id: str) -> None:
        self._class = aggregate_class
        self._id = aggregate_id
        self._history: tuple[object, ...] = ()

    def given(self, *events: object) -> Scenario[A]:
        """The events the aggregate's stream already holds, oldest first."""
        self._history = events
        return self

    def when(self, command: Callable[[A], object]) -> Outcome[A]:
        """Run `command` on the aggregate; a command that creates one may return it."""
        kind = aggregate_type(self._class)
        aggregate = replayed(self._class, self._id, 0)
        for event in self._history:
            kind.apply(aggregate, event)
        mark_applied(aggregate, len(self._history))
        try:
            created = command(aggregate)
        except Exception as error:  # noqa: BLE001 -- the outcome reports it, then_raises checks it
            return Outcome(aggregate, error)
        if isinstance(created, self._class):
            aggregate = created
        return Outcome(aggregate, None)


class Outcome(Generic[A]):
    """What a command did: the events it emitted, or the error it raised.

    Attributes:
        aggregate: The aggregate after the command, with its emitted events pending (the
            one the command returned, if it created one).
        error: The exception the command raised; None if it raised nothing.
    """

    def __init__(self, aggregate: A, error: Exception | None) -> None:
        self.aggregate = aggregate
        self.error = error

    @property
    def events(self) -> list[object]:
        """The events the command emitted."""
        return [p.event for p in pending_events(self.aggregate)]

    def then(self, *expected: object) -> A:
        """Assert the command emitted exactly `expected`, in order; return the aggregate."""
        if self.error is not None:
            msg = f"expected events {list(expected)}, but the command raised {self.error!r}"
            raise AssertionError(msg) from self.error
        if self.events != list(expected):
            msg = f"expected events:\n  {list(expected)}\nbut the command emitted:\n  {self.events}"
            raise AssertionError(msg)
        return self.aggregate

    def then_nothing(self) -> A:
        """Assert the command emitted no event and raised nothing (an idempotent repeat)."""
        return self.then()

    def then_raises(self, error: type[Exception], match: str | None = None) -> Exception:
        """Assert the command raised `error` (its message matching `match`) and emitted nothing."""
        if not isinstance(self.error, error):
            msg = f"expected {error.__name__}, but the command "
            msg += f"raised {self.error!r}" if self.error else f"emitted {self.events}"
            raise AssertionError(msg)  # noqa: TRY004 -- a failed expectation, as in assert
        if match is not None and not re.search(match, str(self.error)):
            msg = f"{error.__name__} message {str(self.error)!r} does not match {match!r}"
            raise AssertionError(msg)
        if self.events:
            msg = f"the command raised {self.error!r} but still emitted {self.events}"
            raise AssertionError(msg)
        return self.error
