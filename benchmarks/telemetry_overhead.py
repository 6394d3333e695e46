"""What the telemetry hooks cost a save and a load: off (the no-op hooks) and on.

    python benchmarks/telemetry_overhead.py [--rounds 7] [--ops 3000]

Each round saves `ops` new wallets (two events each) and loads them again, on the in-memory
store (where the hooks' share is largest) and on SQLite in memory; the best round of each
mode is reported, in microseconds per operation, with the ratio to the hooks off. "on" is
`telemetry.instrument()` with the SDK's tracer and meter providers, spans going to a batch
processor with an exporter that drops them (what export costs depends on the exporter).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Self

from esframework import (
    InMemoryEventStore,
    Repository,
    SQLiteEventStore,
    aggregate,
    applies,
    emit,
    event,
    new,
)


@event(name="BenchOpened")
class Opened:
    owner: str


@event(name="BenchDeposited")
class Deposited:
    amount: Decimal


@aggregate(stream_type="BenchWallet")
class Wallet:
    owner: str = ""
    balance: Decimal = Decimal(0)

    @classmethod
    def open(cls, wallet_id: str, owner: str) -> Self:
        wallet = new(cls, wallet_id)
        emit(wallet, Opened(owner=owner))
        emit(wallet, Deposited(amount=Decimal(10)))
        return wallet

    @applies(Opened)
    def _opened(self, e: Opened) -> None:
        self.owner = e.owner

    @applies(Deposited)
    def _deposited(self, e: Deposited) -> None:
        self.balance += e.amount


def _round(make_store: Callable[[], Any], ops: int, tag: str) -> tuple[float, float]:
    store = make_store()
    wallets = Repository(Wallet, store=store)
    started = time.perf_counter()
    for i in range(ops):
        wallets.save(Wallet.open(f"{tag}-{i}", "ada"))
    saved = time.perf_counter()
    for i in range(ops):
        wallets.load(f"{tag}-{i}")
    loaded = time.perf_counter()
    store.close()
    return (saved - started) / ops * 1e6, (loaded - saved) / ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument(
        "--off-only", action="store_true", help="no OpenTelemetry: runs on versions without it"
    )
    args = parser.parse_args()
    modes = ("off",) if args.off_only else ("off", "on")
    if not args.off_only:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from esframework import telemetry

        class Dropping(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002
                return SpanExportResult.SUCCESS

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    stores: dict[str, Callable[[], Any]] = {
        "memory": InMemoryEventStore,
        "sqlite": lambda: SQLiteEventStore(":memory:"),
    }
    for name, make_store in stores.items():
        best: dict[str, tuple[float, float]] = {}
        for r in range(args.rounds):
            for mode in modes:  # interleaved, so drifts of the machine hit both
                if mode == "on":
                    telemetry.instrument(
                        tracer_provider=tracer_provider, meter_provider=meter_provider
                    )
                try:
                    save, load = _round(make_store, args.ops, f"{mode}{r}")
                finally:
                    if mode == "on":
                        telemetry.uninstrument()
                old = best.get(mode, (float("inf"), float("inf")))
                best[mode] = (min(old[0], save), min(old[1], load))
        off_save, off_load = best["off"]
        if args.off_only:
            print(f"{name}: save {off_save:.1f} us, load {off_load:.1f} us")
            continue
        on_save, on_load = best["on"]
        print(
            f"{name}: save {off_save:.1f} us off, {on_save:.1f} us on (x{on_save / off_save:.2f});"
            f" load {off_load:.1f} us off, {on_load:.1f} us on (x{on_load / off_load:.2f})"
        )
    if not args.off_only:
        tracer_provider.shutdown()
        meter_provider.shutdown()


if __name__ == "__main__":
    main()
