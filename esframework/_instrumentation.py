"""The core's hook points for telemetry: a no-op unless `esframework.telemetry` replaces it.

Repositories and subscription workers call `active` around what they do (a save, a load, an
append, a read, a batch, a handler call). By default `active` is `NO_INSTRUMENTATION`, whose
probes do nothing: a hook then costs one attribute lookup, one call and a `with` on a shared
object, and nothing from OpenTelemetry is imported. `esframework.telemetry.instrument()`
installs an `Instrumentation` whose probes open spans and record metrics.

The probes are plain (not async) context managers, so the async sources and the sync modules
generated from them use the same hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from esframework._records import AppendResult, NewEvent, StoredEvent

__all__ = ["NO_INSTRUMENTATION", "TRACEPARENT", "Instrumentation", "Probe", "active", "install"]

TRACEPARENT = "traceparent"
"""The metadata key the W3C trace context of the saving code is stored under."""


class Probe:
    """Watches one operation; the base does nothing and is shared by every operation."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def traceparent(self) -> str | None:
        """The W3C `traceparent` to store with the events being saved; None for none."""
        return None

    def append(self, records: Sequence[NewEvent], expected_version: int) -> Probe:
        """Watch the store append of a save, once its events are encoded."""
        return self

    def appended(self, result: AppendResult) -> None:
        """Note where the events of an append or a save landed."""

    def read(self, count: int) -> None:
        """Note how many events a read returned (or a load applied)."""

    def loaded(self, version: int) -> None:
        """Note the version a load reached."""


NOOP_PROBE = Probe()


class Instrumentation:
    """The hooks; this base does nothing, `esframework.telemetry` overrides them all."""

    def save(self, stream_id: str, stream_type: str, count: int) -> Probe:
        return NOOP_PROBE

    def load(self, stream_id: str, stream_type: str, at_version: int | None) -> Probe:
        return NOOP_PROBE

    def read_stream(self, stream_id: str, stream_type: str, from_version: int) -> Probe:
        return NOOP_PROBE

    def read_all(self, subscription: str, after: int, limit: int) -> Probe:
        return NOOP_PROBE

    def batch(self, subscription: str, page: Sequence[StoredEvent]) -> Probe:
        return NOOP_PROBE

    def handle(self, subscription: str, record: StoredEvent) -> Probe:
        return NOOP_PROBE

    def lag(self, subscription: str, events: int, seconds: float) -> None:
        """Note how far a subscription is behind, after it committed a batch."""

    def parked(self, subscription: str, record: StoredEvent) -> None:
        """Note that a subscription parked an event."""

    def lease(self, subscription: str, change: str) -> None:
        """Note that a worker `"acquired"`, `"released"` or `"lost"` its lease."""


NO_INSTRUMENTATION = Instrumentation()

active: Instrumentation = NO_INSTRUMENTATION
"""The hooks in force; read on every call (as `_instrumentation.active`), never imported."""


def install(instrumentation: Instrumentation) -> Instrumentation:
    """Put `instrumentation` in force; return the one it replaces."""
    global active  # one process-wide switch, read by every hook point
    previous, active = active, instrumentation
    return previous
