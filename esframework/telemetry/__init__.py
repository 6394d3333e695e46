"""OpenTelemetry spans and metrics for esframework (the optional extra `esframework[otel]`).

Call `instrument()` once at start-up, after configuring OpenTelemetry's providers: from then
on repositories and subscription workers, sync and async, report spans and metrics, and a
save stores the W3C `traceparent` of its span in each event's metadata, which the handler
spans of subscriptions link to. `uninstrument()` switches it off again. Without a call,
nothing of OpenTelemetry is imported and the core's hooks do nothing.

Example:
    >>> from esframework import telemetry  # doctest: +SKIP
    >>> telemetry.instrument()  # doctest: +SKIP
"""

from __future__ import annotations

from opentelemetry import metrics, trace

from esframework import _instrumentation
from esframework.telemetry._otel import OpenTelemetryInstrumentation

__all__ = ["instrument", "uninstrument"]


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Report esframework's spans and metrics to OpenTelemetry.

    Args:
        tracer_provider: An `opentelemetry.trace.TracerProvider`; None for the global one.
        meter_provider: An `opentelemetry.metrics.MeterProvider`; None for the global one.
    """
    _instrumentation.install(
        OpenTelemetryInstrumentation(tracer_provider=tracer_provider, meter_provider=meter_provider)
    )


def uninstrument() -> None:
    """Stop reporting: the core's hooks do nothing again."""
    _instrumentation.install(_instrumentation.NO_INSTRUMENTATION)
