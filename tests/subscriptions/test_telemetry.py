"""OpenTelemetry: spans and metrics of saves, loads and subscriptions, and trace context
carried from the saving code to the handlers, with the SDK's in-memory exporter and reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from esframework import ConcurrencyError, Envelope, Metadata, NewEvent, telemetry
from esframework.errors import IdempotencyConflictError
from tests.conftest import Backend
from tests.domain import Wallet
from tests.subscriptions.conftest import Harness, Sql


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (span,) = self.spans(name)
        return span

    def metrics(self) -> dict[str, list[Any]]:
        """Every data point collected now, by metric name."""
        data = self.reader.get_metrics_data()
        points: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points.setdefault(metric.name, []).extend(metric.data.data_points)
        return points


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    t = Telemetry()
    telemetry.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    yield t
    telemetry.uninstrument()
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_save_and_load_have_spans_with_attributes_and_metrics(
    backend: Backend, otel: Telemetry
) -> None:
    wallets = backend.repository(Wallet)
    wallet = Wallet.open("w-1", "ada")
    wallet.add(Decimal(5))
    wallets.save(wallet)
    wallets.load("w-1")

    save, append = otel.span("esframework.save"), otel.span("esframework.append")
    assert _attrs(save) == {
        "esframework.stream.id": "w-1",
        "esframework.stream.type": "TestWallet",
        "esframework.event.count": 2,
        "esframework.event.types": ("TestMoneyAdded", "TestWalletOpened"),
        "esframework.version": 2,
        **({} if backend.name.startswith("postgres") else {"esframework.positions": (1, 2)}),
    }
    assert append.parent is not None
    assert append.parent.span_id == save.context.span_id
    assert _attrs(append)["esframework.expected_version"] == 0
    assert _attrs(append)["esframework.version"] == 2
    load, read = otel.span("esframework.load"), otel.span("esframework.read")
    assert _attrs(load) == {
        "esframework.stream.id": "w-1",
        "esframework.stream.type": "TestWallet",
        "esframework.version": 2,
    }
    assert read.parent is not None
    assert read.parent.span_id == load.context.span_id
    assert _attrs(read)["esframework.event.count"] == 2
    assert all(s.status.status_code is StatusCode.UNSET for s in (save, append, load, read))

    points = otel.metrics()
    assert [p.value for p in points["esframework.appends"]] == [1]
    assert [p.value for p in points["esframework.events.appended"]] == [2]
    assert points["esframework.appends"][0].attributes == {"esframework.stream.type": "TestWallet"}
    assert [p.count for p in points["esframework.append.duration"]] == [1]
    assert [p.count for p in points["esframework.load.duration"]] == [1]


def test_a_failed_save_records_the_error_on_its_spans(backend: Backend, otel: Telemetry) -> None:
    wallets = backend.repository(Wallet)
    wallets.save(Wallet.open("w-1", "ada"))
    first, second = wallets.load("w-1"), wallets.load("w-1")
    first.add(Decimal(1))
    wallets.save(first)
    second.add(Decimal(2))
    with pytest.raises(ConcurrencyError):
        wallets.save(second)

    failed_save, failed_append = (
        otel.spans("esframework.save")[-1],
        otel.spans("esframework.append")[-1],
    )
    for span in (failed_save, failed_append):
        assert span.status.status_code is StatusCode.ERROR
        (exception,) = [e for e in span.events if e.name == "exception"]
        assert (exception.attributes or {})["exception.type"].endswith("ConcurrencyError")
    points = otel.metrics()
    assert sum(p.value for p in points["esframework.appends"]) == 2  # the failed one is not counted
    failures = [p for p in points["esframework.append.duration"] if "error.type" in p.attributes]
    assert [p.attributes["error.type"] for p in failures] == ["ConcurrencyError"]


def test_a_retried_save_from_another_trace_is_still_idempotent(
    backend: Backend, otel: Telemetry
) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    wallet = Wallet.open("w-1", "ada")
    wallets = backend.repository(Wallet)
    with tracer.start_as_current_span("first request"):
        wallets.save(wallet)
    (stored,) = list(backend.store.read_stream("w-1"))
    first = orjson.loads(stored.metadata)["traceparent"]
    # The same event again, as a client resending its request would, from another trace.
    other = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    again = NewEvent(
        stored.event_id,
        stored.event_type,
        stored.schema_version,
        stored.data,
        orjson.dumps({"traceparent": other}).decode(),
    )
    result = backend.store.append("w-1", "TestWallet", [again], expected_version=0)
    assert result.version == 1
    (kept,) = list(backend.store.read_stream("w-1"))
    assert orjson.loads(kept.metadata)["traceparent"] == first
    # Other metadata is still content: a change there is no retry.
    changed = again._replace(metadata=orjson.dumps({"user": "eve"}).decode())
    with pytest.raises(IdempotencyConflictError):
        backend.store.append("w-1", "TestWallet", [changed], expected_version=0)


def test_the_link_survives_metadata_orjson_cannot_parse(harness: Harness, otel: Telemetry) -> None:
    """Metadata holding an int past a double's range (which orjson cannot parse, and the
    events load back exactly) kept the handler span from linking to the save."""

    def handle(_envelope: Envelope[Any], _: Sql) -> None:
        pass

    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        harness.repository(Wallet).save(
            Wallet.open("w-1", "ada"), metadata=Metadata(extra={"n": 10**400})
        )
    save = otel.span("esframework.save")
    harness.worker(handle, name="projector").run(until_caught_up=True)
    (link,) = otel.span("esframework.handle").links
    assert (link.context.trace_id, link.context.span_id) == (
        save.context.trace_id,
        save.context.span_id,
    )


def test_the_handler_span_links_to_the_save_that_stored_the_event(
    harness: Harness, otel: Telemetry
) -> None:
    seen: list[Envelope[Any]] = []

    def handle(envelope: Envelope[Any], _: Sql) -> None:
        seen.append(envelope)

    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        harness.repository(Wallet).save(Wallet.open("w-1", "ada"))
    save = otel.span("esframework.save")
    assert save.parent is not None
    assert save.parent.span_id == request.get_span_context().span_id
    (record,) = harness.store.read_all()
    traceparent = orjson.loads(record.metadata)["traceparent"]
    context = save.context
    assert (
        traceparent
        == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )

    harness.worker(handle, name="projector").run(until_caught_up=True)

    assert seen[0].metadata.extra["traceparent"] == traceparent
    batch, handler = otel.span("esframework.subscription.batch"), otel.span("esframework.handle")
    assert handler.parent is not None
    assert handler.parent.span_id == batch.context.span_id
    assert handler.context.trace_id != save.context.trace_id  # the worker has its own trace
    (link,) = handler.links
    assert (link.context.trace_id, link.context.span_id) == (
        save.context.trace_id,
        save.context.span_id,
    )
    assert _attrs(handler) == {
        "esframework.subscription.name": "projector",
        "esframework.stream.id": "w-1",
        "esframework.stream.type": "TestWallet",
        "esframework.event.type": "TestWalletOpened",
        "esframework.event.id": str(record.event_id),
        "esframework.version": 1,
        "esframework.position": record.position,
    }
    assert _attrs(batch) == {
        "esframework.subscription.name": "projector",
        "esframework.event.count": 1,
        "esframework.event.types": ("TestWalletOpened",),
        "esframework.position.first": record.position,
        "esframework.position.last": record.position,
    }
    # The worker read twice (the event, then nothing): an empty page read makes no span.
    (read,) = otel.spans("esframework.read")
    assert _attrs(read) == {
        "esframework.subscription.name": "projector",
        "esframework.after_position": 0,
        "esframework.limit": 100,
        "esframework.event.count": 1,
    }
    assert read.start_time is not None
    assert read.end_time is not None
    assert read.start_time < read.end_time <= batch.start_time
    points = otel.metrics()
    assert [p.count for p in points["esframework.handler.duration"]] == [1]
    (lag,) = points["esframework.subscription.lag.events"]
    assert (lag.value, lag.attributes) == (0, {"esframework.subscription.name": "projector"})
    (seconds,) = points["esframework.subscription.lag.seconds"]
    assert 0 <= seconds.value < 60
    changes = {
        p.attributes["esframework.lease.change"]: p.value
        for p in points["esframework.subscription.lease.changes"]
    }
    assert changes == {"acquired": 1, "released": 1}


def test_a_failing_handler_is_recorded_on_its_span_and_parking_is_counted(
    harness: Harness, otel: Telemetry
) -> None:
    def handle(envelope: Envelope[Any], _: Sql) -> None:
        msg = f"cannot handle {envelope.version}"
        raise RuntimeError(msg)

    harness.repository(Wallet).save(Wallet.open("w-1", "ada"))
    harness.worker(handle, max_attempts=1, dead_letter=True).run(until_caught_up=True)

    handlers = otel.spans("esframework.handle")
    assert handlers  # the batch's try, then the event on its own
    for span in handlers:
        assert span.status.status_code is StatusCode.ERROR
        (exception,) = [e for e in span.events if e.name == "exception"]
        assert (exception.attributes or {})["exception.message"] == "cannot handle 1"
    (parked,) = otel.metrics()["esframework.subscription.parked"]
    assert parked.value == 1
    assert parked.attributes == {
        "esframework.subscription.name": "test",
        "esframework.event.type": "TestWalletOpened",
    }


def test_a_traceparent_the_caller_gives_is_kept(backend: Backend, otel: Telemetry) -> None:
    given = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    wallet = Wallet.open("w-1", "ada")
    backend.repository(Wallet).save(wallet, metadata=Metadata(extra={"traceparent": given}))
    (stored,) = list(backend.store.read_stream("w-1"))
    assert orjson.loads(stored.metadata) == {"traceparent": given}
    assert otel.spans("esframework.save")


def test_uninstrument_stops_the_spans(backend: Backend, otel: Telemetry) -> None:
    telemetry.uninstrument()
    backend.repository(Wallet).save(Wallet.open("w-1", "ada"))
    assert otel.exporter.get_finished_spans() == ()
    (stored,) = list(backend.store.read_stream("w-1"))
    assert stored.metadata == "{}"


def test_without_a_tracer_the_metadata_gets_no_traceparent(backend: Backend) -> None:
    # instrument() with OpenTelemetry's default (no-op) provider: spans are not recorded.
    telemetry.instrument(tracer_provider=trace.NoOpTracerProvider())
    try:
        backend.repository(Wallet).save(Wallet.open("w-1", "ada"))
    finally:
        telemetry.uninstrument()
    (stored,) = list(backend.store.read_stream("w-1"))
    assert stored.metadata == "{}"


_BLOCK_OTEL = """
import sys
from importlib.abc import MetaPathFinder


class NoOpenTelemetry(MetaPathFinder):
    # As if the extra were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoOpenTelemetry())
"""


def _run(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_importing_esframework_imports_nothing_of_opentelemetry() -> None:
    _run("""
        import sys
        import esframework
        import esframework.postgres
        assert not any(m.startswith("opentelemetry") for m in sys.modules), sorted(sys.modules)
    """)


def test_everything_works_without_opentelemetry_installed(tmp_path: Any) -> None:
    _run(
        _BLOCK_OTEL
        + textwrap.dedent(f"""
        from decimal import Decimal
        from esframework import Repository, SQLiteEventStore, Subscription, SubscriptionWorker
        from tests.domain import Wallet

        seen = []
        with SQLiteEventStore({str(tmp_path / "events.db")!r}) as store:
            wallets = Repository(Wallet, store=store)
            wallet = Wallet.open("w-1", "ada")
            wallet.add(Decimal(3))
            wallets.save(wallet)
            assert wallets.load("w-1").balance == Decimal(3)
            subscription = Subscription(name="s", handler=lambda e, c: seen.append(e))
            SubscriptionWorker(store, subscription).run(until_caught_up=True)
        assert [e.version for e in seen] == [1, 2]
        assert all(e.metadata.extra == {{}} for e in seen)
        try:
            import esframework.telemetry
        except ModuleNotFoundError as error:
            assert error.name.startswith("opentelemetry"), error
        else:
            raise AssertionError("esframework.telemetry imported without OpenTelemetry")
        assert not any(m.startswith("opentelemetry") for m in sys.modules)
    """)
    )


def test_lease_changes_are_counted_and_a_lost_lease_too(harness: Harness, otel: Telemetry) -> None:
    checkpoints = harness.table("subscription_checkpoints")
    moved: list[int] = []

    def handle(envelope: Envelope[Any], sql: Sql) -> None:
        if not moved:  # as if another instance had moved the checkpoint meanwhile
            moved.append(envelope.position)
            sql(
                f"UPDATE {checkpoints} SET last_position = last_position + 100 "
                "WHERE subscription_id = ?",
                "test",
            )

    harness.repository(Wallet).save(Wallet.open("w-1", "ada"))
    harness.worker(handle).run(until_caught_up=True)

    changes = {
        p.attributes["esframework.lease.change"]: p.value
        for p in otel.metrics()["esframework.subscription.lease.changes"]
    }
    assert changes == {"acquired": 2, "released": 2, "lost": 1}
