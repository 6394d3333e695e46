"""The hooks of `esframework._instrumentation`, reporting to OpenTelemetry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Self

from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from esframework._instrumentation import TRACEPARENT, Instrumentation, Probe
from esframework._json import loads
from esframework._records import AppendResult, NewEvent, StoredEvent

__all__ = ["OpenTelemetryInstrumentation"]

_SCOPE = "esframework"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT_KEY = f'"{TRACEPARENT}"'  # a cheap test before parsing an event's metadata

Attributes = dict[str, AttributeValue]


class _Metrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.appends = meter.create_counter(
            "esframework.appends", unit="{append}", description="Appends that committed."
        )
        self.events_appended = meter.create_counter(
            "esframework.events.appended", unit="{event}", description="Events appended."
        )
        self.append_duration = meter.create_histogram(
            "esframework.append.duration", unit="s", description="How long appends took."
        )
        self.load_duration = meter.create_histogram(
            "esframework.load.duration", unit="s", description="How long aggregate loads took."
        )
        self.handler_duration = meter.create_histogram(
            "esframework.handler.duration", unit="s", description="How long handler calls took."
        )
        self.parked = meter.create_counter(
            "esframework.subscription.parked", unit="{event}", description="Events parked."
        )
        self.lease_changes = meter.create_counter(
            "esframework.subscription.lease.changes",
            unit="{change}",
            description="Leases acquired, released or lost.",
        )
        # The lag is a state, not an event: the gauges report each subscription's latest
        # figures (noted after every committed batch) whenever the reader collects.
        self._lock = threading.Lock()
        self._lag: dict[str, tuple[int, float]] = {}
        meter.create_observable_gauge(
            "esframework.subscription.lag.events",
            callbacks=[self._observe_events],
            unit="{event}",
            description="Events between a subscription's checkpoint and the store's head.",
        )
        meter.create_observable_gauge(
            "esframework.subscription.lag.seconds",
            callbacks=[self._observe_seconds],
            unit="s",
            description="Age of the last event a subscription committed, when it committed.",
        )

    def note_lag(self, subscription: str, events: int, seconds: float) -> None:
        with self._lock:
            self._lag[subscription] = (events, seconds)

    def _observe_events(self, _: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            lags = list(self._lag.items())
        return [metrics.Observation(e, {_SUBSCRIPTION: name}) for name, (e, _s) in lags]

    def _observe_seconds(self, _: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            lags = list(self._lag.items())
        return [metrics.Observation(s, {_SUBSCRIPTION: name}) for name, (_e, s) in lags]


_STREAM_ID = "esframework.stream.id"
_STREAM_TYPE = "esframework.stream.type"
_EVENT_COUNT = "esframework.event.count"
_EVENT_TYPES = "esframework.event.types"
_SUBSCRIPTION = "esframework.subscription.name"


class _SpanProbe(Probe):
    """One span, current while the operation runs; an exception is recorded on it."""

    __slots__ = ("_scope", "_span", "_started", "_tracer", "_wrapped")

    def __init__(self, tracer: trace.Tracer, span: trace.Span) -> None:
        self._tracer = tracer
        self._span = span
        self._scope: AbstractContextManager[trace.Span] = trace.use_span(
            span, end_on_exit=True, record_exception=True, set_status_on_exception=True
        )
        self._started = 0.0

    def __enter__(self) -> Self:
        self._scope.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finished(time.perf_counter() - self._started, exc_type)
        self._scope.__exit__(exc_type, exc, tb)

    def _finished(self, seconds: float, error: type[BaseException] | None) -> None:
        """Record the operation's metrics; spans only by default."""

    def traceparent(self) -> str | None:
        context = self._span.get_span_context()
        if not context.is_valid:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def read(self, count: int) -> None:
        self._span.set_attribute(_EVENT_COUNT, count)

    def loaded(self, version: int) -> None:
        self._span.set_attribute("esframework.version", version)

    def appended(self, result: AppendResult) -> None:
        self._span.set_attribute("esframework.version", result.version)
        if result.positions:  # PostgreSQL positions events after the commit
            self._span.set_attribute("esframework.positions", list(result.positions))


class _SaveProbe(_SpanProbe):
    __slots__ = ("_metrics", "_stream_id", "_stream_type")

    def __init__(
        self,
        tracer: trace.Tracer,
        span: trace.Span,
        metrics: _Metrics,
        stream_id: str,
        stream_type: str,
    ) -> None:
        super().__init__(tracer, span)
        self._metrics = metrics
        self._stream_id = stream_id
        self._stream_type = stream_type

    def append(self, records: Sequence[NewEvent], expected_version: int) -> Probe:
        types = sorted({r.event_type for r in records})
        self._span.set_attribute(_EVENT_TYPES, types)
        attributes: Attributes = {
            _STREAM_ID: self._stream_id,
            _STREAM_TYPE: self._stream_type,
            _EVENT_TYPES: types,
            _EVENT_COUNT: len(records),
            "esframework.expected_version": expected_version,
        }
        span = self._tracer.start_span(
            "esframework.append", kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        return _AppendProbe(self._tracer, span, self._metrics, self._stream_type, len(records))


class _AppendProbe(_SpanProbe):
    __slots__ = ("_count", "_metrics", "_stream_type")

    def __init__(
        self,
        tracer: trace.Tracer,
        span: trace.Span,
        metrics: _Metrics,
        stream_type: str,
        count: int,
    ) -> None:
        super().__init__(tracer, span)
        self._metrics = metrics
        self._stream_type = stream_type
        self._count = count

    def _finished(self, seconds: float, error: type[BaseException] | None) -> None:
        attributes: Attributes = {_STREAM_TYPE: self._stream_type}
        if error is None:
            self._metrics.appends.add(1, attributes)
            self._metrics.events_appended.add(self._count, attributes)
        else:
            attributes["error.type"] = error.__qualname__
        self._metrics.append_duration.record(seconds, attributes)


class _TimedProbe(_SpanProbe):
    """A span whose duration also goes to a histogram, with a few low-cardinality attributes."""

    __slots__ = ("_attributes", "_histogram")

    def __init__(
        self,
        tracer: trace.Tracer,
        span: trace.Span,
        histogram: metrics.Histogram,
        attributes: Attributes,
    ) -> None:
        super().__init__(tracer, span)
        self._histogram = histogram
        self._attributes = attributes

    def _finished(self, seconds: float, error: type[BaseException] | None) -> None:
        attributes = self._attributes
        if error is not None:
            attributes = {**attributes, "error.type": error.__qualname__}
        self._histogram.record(seconds, attributes)


class _PageReadProbe(Probe):
    """A subscription's page read, reported only if it found events or failed.

    A caught-up worker reads an empty page at every poll: a span for each would fill the
    trace store with one-span traces that say nothing. The span is made once the read is
    over, with the read's start time.
    """

    __slots__ = ("_attributes", "_count", "_started", "_tracer")

    def __init__(self, tracer: trace.Tracer, attributes: Attributes) -> None:
        self._tracer = tracer
        self._attributes = attributes
        self._count = 0
        self._started = 0

    def __enter__(self) -> Self:
        self._started = time.time_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None and self._count == 0:
            return
        span = self._tracer.start_span(
            "esframework.read",
            kind=trace.SpanKind.CLIENT,
            attributes={**self._attributes, _EVENT_COUNT: self._count},
            start_time=self._started,
        )
        if exc is not None:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    def read(self, count: int) -> None:
        self._count = count


class OpenTelemetryInstrumentation(Instrumentation):
    """Spans and metrics for every hook point of the core."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        self._metrics = _Metrics(metrics.get_meter(_SCOPE, meter_provider=meter_provider))

    def save(self, stream_id: str, stream_type: str, count: int) -> Probe:
        span = self._tracer.start_span(
            "esframework.save",
            attributes={_STREAM_ID: stream_id, _STREAM_TYPE: stream_type, _EVENT_COUNT: count},
        )
        return _SaveProbe(self._tracer, span, self._metrics, stream_id, stream_type)

    def load(self, stream_id: str, stream_type: str, at_version: int | None) -> Probe:
        attributes: Attributes = {_STREAM_ID: stream_id, _STREAM_TYPE: stream_type}
        if at_version is not None:
            attributes["esframework.at_version"] = at_version
        span = self._tracer.start_span("esframework.load", attributes=attributes)
        return _TimedProbe(
            self._tracer, span, self._metrics.load_duration, {_STREAM_TYPE: stream_type}
        )

    def read_stream(self, stream_id: str, stream_type: str, from_version: int) -> Probe:
        span = self._tracer.start_span(
            "esframework.read",
            kind=trace.SpanKind.CLIENT,
            attributes={
                _STREAM_ID: stream_id,
                _STREAM_TYPE: stream_type,
                "esframework.from_version": from_version,
            },
        )
        return _SpanProbe(self._tracer, span)

    def read_all(self, subscription: str, after: int, limit: int) -> Probe:
        return _PageReadProbe(
            self._tracer,
            {
                _SUBSCRIPTION: subscription,
                "esframework.after_position": after,
                "esframework.limit": limit,
            },
        )

    def batch(self, subscription: str, page: Sequence[StoredEvent]) -> Probe:
        span = self._tracer.start_span(
            "esframework.subscription.batch",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                _SUBSCRIPTION: subscription,
                _EVENT_COUNT: len(page),
                _EVENT_TYPES: sorted({r.event_type for r in page}),
                "esframework.position.first": page[0].position,
                "esframework.position.last": page[-1].position,
            },
        )
        return _SpanProbe(self._tracer, span)

    def handle(self, subscription: str, record: StoredEvent) -> Probe:
        span = self._tracer.start_span(
            "esframework.handle",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                _SUBSCRIPTION: subscription,
                _STREAM_ID: record.stream_id,
                _STREAM_TYPE: record.stream_type,
                "esframework.event.type": record.event_type,
                "esframework.event.id": str(record.event_id),
                "esframework.version": record.version,
                "esframework.position": record.position,
            },
            links=list(_links(record)),
        )
        return _TimedProbe(
            self._tracer,
            span,
            self._metrics.handler_duration,
            {_SUBSCRIPTION: subscription, "esframework.event.type": record.event_type},
        )

    def lag(self, subscription: str, events: int, seconds: float) -> None:
        self._metrics.note_lag(subscription, events, seconds)

    def parked(self, subscription: str, record: StoredEvent) -> None:
        self._metrics.parked.add(
            1, {_SUBSCRIPTION: subscription, "esframework.event.type": record.event_type}
        )

    def lease(self, subscription: str, change: str) -> None:
        self._metrics.lease_changes.add(
            1, {_SUBSCRIPTION: subscription, "esframework.lease.change": change}
        )


def _links(record: StoredEvent) -> Iterator[trace.Link]:
    """Link to the span that saved the event, from the `traceparent` in its metadata."""
    if _TRACEPARENT_KEY not in record.metadata:
        return
    try:
        fields = loads(record.metadata)  # an int past a double's range too
    except ValueError:  # decoding reports it to the handler; a link is optional
        return
    value = fields.get(TRACEPARENT) if isinstance(fields, dict) else None
    if not isinstance(value, str):
        return
    context = trace.get_current_span(_PROPAGATOR.extract({TRACEPARENT: value})).get_span_context()
    if context.is_valid:
        yield trace.Link(context)
