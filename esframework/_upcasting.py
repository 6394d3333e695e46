"""Upcasters: functions that turn a stored event's data into its next schema version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from esframework._events import registry
from esframework.errors import (
    CorruptEventError,
    DefinitionError,
    EventDecodingError,
    MissingUpcasterError,
    UnknownEventTypeError,
)

__all__ = ["Located", "Upcaster", "Upcasters", "upcaster", "upcasters"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Takes an event's JSON data at one schema version and returns it at the next."""


@attrs.frozen
class _Step:
    from_name: str
    from_version: int
    to_name: str
    function: Upcaster


@attrs.frozen
class Located:
    """Where a stored event is read from, for error messages."""

    stream_id: str
    version: int
    position: int | None


class Upcasters:
    """A set of upcaster chains, each step taking `(type, n)` to `(type', n + 1)`.

    Example:
        ```python
        chains = Upcasters()

        @chains.register("Deposited", from_version=1, rename_to="MoneyDeposited")
        def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "currency": "EUR"}
        ```
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], _Step] = {}

    def register(
        self, event_type: str, *, from_version: int, rename_to: str | None = None
    ) -> Callable[[Upcaster], Upcaster]:
        """Register the decorated function to upcast `event_type` data from `from_version`.

        Args:
            event_type: The stored type name at `from_version`.
            from_version: The schema version the function reads; it returns version + 1.
            rename_to: The type name at the next version, if the event was renamed.

        Raises:
            DefinitionError: A step from this type and version is already registered.
        """

        def decorate(function: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._steps:
                raise DefinitionError(
                    f"an upcaster from {event_type!r} version {from_version} is already "
                    f"registered: {self._steps[key].function.__qualname__}"
                )
            self._steps[key] = _Step(event_type, from_version, rename_to or event_type, function)
            return function

        return decorate

    def maps(self, name: str) -> bool:
        """Return whether events stored under `name` can be read: a registered event class
        has that name, or an upcaster starts from it."""
        return registry.current_version(name) is not None or any(n == name for n, _ in self._steps)

    def names_leading_to(self, name: str) -> set[str]:
        """Return `name` and every stored type name whose upcaster chain renames it to `name`."""
        names = {name}
        while True:
            more = {old for (old, _), step in self._steps.items() if step.to_name in names}
            if more <= names:
                return names
            names |= more

    def upcast(
        self, name: str, version: int, data: dict[str, Any], where: Located
    ) -> tuple[str, int, dict[str, Any]]:
        """Return `(name, version, data)` brought up to the current registered version.

        Raises:
            UnknownEventTypeError: No event class and no upcaster knows `name`.
            MissingUpcasterError: The chain to the current version has a missing link.
            CorruptEventError: An upcaster raised, or returned something else than a dict
                (the upcaster's error is the cause).
        """
        stored_name = name
        while True:
            current = registry.current_version(name)
            if current == version:
                return name, version, data
            step = self._steps.get((name, version))
            if step is None:
                raise self._no_step(name, version, current, where)
            data = _run_step(step, data, stored_name, where)
            name, version = step.to_name, version + 1

    def _no_step(self, name: str, version: int, current: int | None, where: Located) -> Exception:
        error: type[EventDecodingError] = MissingUpcasterError
        if current is None and not any(n == name for n, _ in self._steps):
            error = UnknownEventTypeError
            reason = (
                "no event class is registered under this type name "
                "(is the module that defines it imported?)"
            )
        elif current is not None and version > current:
            reason = (
                f"stored at schema version {version}, newer than the newest registered "
                f"version {current} (was it written by a newer release?)"
            )
        else:
            reason = f"no upcaster from schema version {version} to {version + 1}"
            if current is not None:
                reason += f" (the current version is {current})"
        return error(
            reason,
            event_type=name,
            stream_id=where.stream_id,
            version=where.version,
            position=where.position,
        )


def _run_step(
    step: _Step, data: dict[str, Any], stored_name: str, where: Located
) -> dict[str, Any]:
    """Run one upcaster; what it raises becomes a `CorruptEventError` that says where."""
    # An upcaster is user code over old JSON: a KeyError for a field some old rows lack
    # must name the stream and position, or nobody can find the row.
    try:
        upcast = step.function(data)
    except Exception as error:
        raise _failed_step(step, stored_name, where, f"{type(error).__name__}: {error}") from error
    if not isinstance(upcast, dict):
        raise _failed_step(step, stored_name, where, f"returned a {type(upcast).__name__}")
    return upcast


def _failed_step(step: _Step, stored_name: str, where: Located, what: str) -> CorruptEventError:
    return CorruptEventError(
        f"upcaster {step.function.__qualname__} (from {step.from_name!r} schema version "
        f"{step.from_version}) failed: {what}",
        event_type=stored_name,
        stream_id=where.stream_id,
        version=where.version,
        position=where.position,
    )


upcasters = Upcasters()
"""The upcasters the default `Serializer` uses."""

upcaster = upcasters.register
"""Register an upcaster with the default set: `@upcaster("Deposited", from_version=1)`."""
