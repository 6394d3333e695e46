"""What personal data costs the hot path: events without personal fields, and with one.

    python benchmarks/personal_data.py [--rounds 5] [--events 20000] [--store sqlite]
    python benchmarks/personal_data.py --store postgres --dsn postgresql://postgres@127.0.0.1:5432/test

esframework alone. Every figure is a rate (events/s, higher is better); each round runs every
variant once, in an order that rotates from round to round, and the table shows the medians
and the ratios between variants of one run (the machine's noise cancels there, not in the
rates themselves).

The baseline, `bypassed`, is today's code with the personal-data steps taken out: the
`Serializer` subclass below encodes without looking up the class's personal fields and
decodes without looking for the `$personal` marker, and the keyring that the repository and
the subscription worker make for each read is replaced by one that fetches nothing (the
worker still calls it: a call that does nothing). It is not the commit before personal data
landed: the code has changed in other ways since (tags), which would be measured too.

Variants (events of 3 fields: an account id, a two-decimal amount and a short note; in
`sealed`, the note is `personal(subject="account_id")`, one subject per stream):

- `codec_bypassed`, `codec_plain`, `codec_sealed`: encode then decode one event, in memory,
  as a subscription does it: `Serializer.encode` (with the subjects' keys fetched beforehand
  for `sealed`, as a save does), then `Keyring(keys).for_data(data)` for a keyring of the
  event's own and `Serializer.decode`. The key store is an in-memory one: no database.
- `catchup_bypassed`, `catchup_plain`, `catchup_sealed`: a new `SubscriptionWorker` delivers
  the `--events` stored events to a handler that does nothing, on the chosen store (keys in
  that store's key table).
- `load_bypassed`, `load_plain`, `load_sealed`: `Repository.load` of a 1,000-event aggregate
  with no snapshot, repeatedly for `--seconds`; events/s is loads/s times 1,000.

Ratios printed: plain / bypassed (the feature's cost for events without personal data:
1.00 is free) and sealed / plain (what sealing one field costs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from _common import drop_schema, recreate_schema

import esframework._repository as repository_module
import esframework._subscription_worker as subscriptions_module
from esframework import (
    Envelope,
    InMemoryEventStore,
    Repository,
    Serializer,
    SQLiteEventStore,
    StoredEvent,
    Subscription,
    SubscriptionWorker,
    aggregate,
    applies,
    emit,
    event,
    new,
    personal,
)
from esframework._events import registry
from esframework._json import Invalid, NeedsExactInts, loads, loads_exact
from esframework._personal._keyring import Keyring
from esframework._serialization import _corrupt
from esframework.errors import EventEncodingError

PLAIN, SEALED, BYPASSED = "plain", "sealed", "bypassed"
VARIANTS = (BYPASSED, PLAIN, SEALED)
LOAD_EVENTS = 1_000
STREAM_EVENTS = 100  # events per stream (and per subject) in the catch-up's store


@event(name="BenchPersonalPlain")
class Plain:
    account_id: str
    amount: Decimal
    note: str


@event(name="BenchPersonalSealed")
class Sealed:
    account_id: str
    amount: Decimal
    note: str = personal(subject="account_id", forgotten="")


@aggregate(stream_type="BenchPersonalAccount")
class Account:
    balance: Decimal = Decimal(0)

    @applies(Plain)
    def _plain(self, e: Plain) -> None:
        self.balance += e.amount

    @applies(Sealed)
    def _sealed(self, e: Sealed) -> None:
        self.balance += e.amount


EVENT_CLASSES: dict[str, type[Any]] = {BYPASSED: Plain, PLAIN: Plain, SEALED: Sealed}


class BypassedSerializer(Serializer):
    """`Serializer` with the personal-data steps taken out of encoding and decoding.

    `_dumps` and `decode_event` as they are in `esframework._serialization`, less the
    `personal_fields` lookup and the `_opened` marker check; everything else (the checking
    encoder, the NUL check, metadata, tags, upcasting, the error handling) stays.
    """

    def _dumps(
        self,
        name: str,
        cls: type[Any],
        value: object,
        prefix: str,
        *,
        keys: Any = None,  # noqa: ARG002
        nonce: Any = None,  # noqa: ARG002
        state: bool = False,  # noqa: ARG002
    ) -> str:
        encode = self._encoder(cls)
        try:
            return orjson.dumps(encode(value)).decode()
        except Invalid as error:
            raise EventEncodingError(name, prefix + error.reason, field=error.where) from error

    def decode_event(self, record: Any, keys: Any = None) -> Any:  # noqa: ARG002
        if self._generation != registry.generation:
            self._current.clear()
            self._generation = registry.generation
        try:
            try:
                return self._decode_payload(record, loads(record.data))
            except NeedsExactInts:
                return self._decode_payload(record, loads_exact(record.data))
        except Invalid as e:
            raise _corrupt(record, f"the payload does not fit: {e.reason}") from e
        except (ValueError, TypeError) as e:
            raise _corrupt(record, f"the payload does not fit: {e}") from e


_NO_KEYS: dict[str, bytes | None] = {}


class NoKeyring:
    """A keyring that fetches nothing: the bypassed read paths' stand-in for `Keyring`."""

    def __init__(self, keys: Any) -> None:
        pass

    def for_data(self, *documents: str) -> dict[str, bytes | None]:  # noqa: ARG002
        return _NO_KEYS

    def for_all(self, documents: Any) -> dict[str, bytes | None]:  # noqa: ARG002
        return _NO_KEYS


@contextmanager
def bypassed_keyrings() -> Iterator[None]:
    """Make the repository and the subscription worker use `NoKeyring` meanwhile."""
    saved = repository_module.Keyring, subscriptions_module.Keyring
    repository_module.Keyring = subscriptions_module.Keyring = NoKeyring  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        repository_module.Keyring, subscriptions_module.Keyring = saved  # type: ignore[misc]


SERIALIZERS: dict[str, Serializer] = {
    BYPASSED: BypassedSerializer(),
    PLAIN: Serializer(),
    SEALED: Serializer(),
}


def make_event(cls: type[Any], i: int, account: str) -> Any:
    return cls(account_id=account, amount=Decimal(i % 10_000) / 100, note=f"deposit {i}")


# --- codec ---------------------------------------------------------------------------------


def codec_rate(variant: str, count: int) -> float:
    """Encode then decode `count` events, each decoded with a keyring of its own."""
    serializer, cls = SERIALIZERS[variant], EVENT_CLASSES[variant]
    keystore = InMemoryEventStore()
    subjects = [f"acct-{i}" for i in range(100)]
    events = [make_event(cls, i, subjects[i % 100]) for i in range(count)]
    ids = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    keyring: Callable[[Any], Any] = NoKeyring if variant == BYPASSED else Keyring
    start = time.perf_counter()
    for i, e in enumerate(events):
        subject = serializer.personal_subjects(e) if variant != BYPASSED else frozenset()
        keys = keystore.personal_data_keys(subject, create=True) if subject else None
        new_event = serializer.encode(e, event_id=ids[i], keys=keys)
        record = StoredEvent(
            new_event.event_id,
            e.account_id,
            "BenchPersonalAccount",
            new_event.event_type,
            new_event.schema_version,
            new_event.data,
            new_event.metadata,
            1,
            i + 1,
            now,
        )
        serializer.decode(record, keyring(keystore).for_data(record.data))
    return count / (time.perf_counter() - start)


# --- stores ----------------------------------------------------------------------------------


class Stores:
    """One store per event class (plain, sealed), each holding `events` events of that class
    in streams of 100, and one 1,000-event aggregate for the loads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._temp = tempfile.TemporaryDirectory(prefix="bench-personal-")
        self.stores: dict[str, Any] = {}
        for kind in (PLAIN, SEALED):
            store = self.stores[kind] = self._open(kind)
            fill(store, EVENT_CLASSES[kind], args.events)
        self.stores[BYPASSED] = self.stores[PLAIN]

    def _open(self, kind: str) -> Any:
        if self._args.store == "sqlite":
            return SQLiteEventStore(Path(self._temp.name) / f"{kind}.db", synchronous="OFF")
        from esframework.postgres import PostgresEventStore

        schema = f"bench_personal_{kind}"
        recreate_schema(self._args.dsn, schema)  # empty, whatever a killed run left
        store = PostgresEventStore(self._args.dsn, schema=schema)
        store.migrate()
        return store

    def close(self) -> None:
        for kind in (PLAIN, SEALED):
            store = self.stores[kind]
            store.close()
            if self._args.store == "postgres":
                drop_schema(self._args.dsn, store.schema)
        self._temp.cleanup()


def fill(store: Any, cls: type[Any], events: int) -> None:
    """Store `events` events in streams of 100 (one subject each), and the load aggregate."""
    repository = Repository(Account, store=store)
    for first in range(0, events, STREAM_EVENTS):
        stream = f"acct-{first // STREAM_EVENTS}"
        account = new(Account, stream)
        for i in range(first, min(first + STREAM_EVENTS, events)):
            emit(account, make_event(cls, i, stream))
        repository.save(account)
    account = new(Account, "load")
    for i in range(LOAD_EVENTS):
        emit(account, make_event(cls, i, "load"))
    repository.save(account)


def catchup_rate(store: Any, variant: str, events: int) -> float:
    delivered = 0
    worker: SubscriptionWorker[Any]

    def handle(_: Envelope[Any], __: Any) -> None:
        nonlocal delivered
        delivered += 1
        if delivered == events:
            worker.stopper.set()

    worker = SubscriptionWorker(
        store,
        Subscription(name=f"bench-{uuid.uuid4()}", handler=handle, batch_size=1000),
        serializer=SERIALIZERS[variant],
    )
    start = time.perf_counter()
    worker.run(until_caught_up=True)
    elapsed = time.perf_counter() - start
    assert delivered >= events, f"delivered {delivered} of {events}"
    return delivered / elapsed


def load_rate(store: Any, variant: str, seconds: float) -> float:
    repository = Repository(Account, store=store, serializer=SERIALIZERS[variant])
    loads_done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or loads_done == 0:
        account = repository.load("load")
        loads_done += 1
    assert account.balance > 0
    return loads_done * LOAD_EVENTS / elapsed


# --- rounds ----------------------------------------------------------------------------------


def run_variant(scenario: str, variant: str, stores: Stores, args: argparse.Namespace) -> float:
    store = stores.stores[variant]
    work: dict[str, Callable[[], float]] = {
        "codec": lambda: codec_rate(variant, args.codec_events),
        "catchup": lambda: catchup_rate(store, variant, args.events + LOAD_EVENTS),
        "load": lambda: load_rate(store, variant, args.seconds),
    }
    if variant == BYPASSED:
        with bypassed_keyrings():
            return work[scenario]()
    return work[scenario]()


SCENARIOS = ("codec", "catchup", "load")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=20_000, help="events the catch-up reads")
    parser.add_argument("--codec-events", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=1.0, help="of loads, per variant")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--quick", action="store_true", help="a 10x smaller smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"a subset of {','.join(SCENARIOS)}"
    )
    args = parser.parse_args()
    args.scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    if not args.scenarios:
        parser.error(f"--scenarios: choose among {','.join(SCENARIOS)}")
    if args.quick:
        args.events //= 10
        args.codec_events //= 10
        args.seconds /= 10
    args.events -= args.events % STREAM_EVENTS
    return args


def ratios_of(rounds: dict[str, list[float]], scenarios: list[str]) -> dict[str, float]:
    """plain / bypassed and sealed / plain per scenario: of the medians, and the median of
    the rounds' own ratios (each round's variants ran back to back)."""
    out = {}
    for scenario in scenarios:
        for a, b in ((PLAIN, BYPASSED), (SEALED, PLAIN)):
            x, y = rounds[f"{scenario}_{a}"], rounds[f"{scenario}_{b}"]
            out[f"{scenario} {a}/{b}"] = statistics.median(x) / statistics.median(y)
            per_round = statistics.median(p / q for p, q in zip(x, y, strict=True))
            out[f"{scenario} {a}/{b}, median of rounds"] = per_round
    return out


def main() -> None:
    args = parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    began = time.perf_counter()
    stores = Stores(args)
    log(f"stored {args.events:,} events (+ a {LOAD_EVENTS:,}-event aggregate) per store")
    rounds: dict[str, list[float]] = {f"{s}_{v}": [] for s in args.scenarios for v in VARIANTS}
    try:
        for r in range(args.rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            log(f"round {r + 1}/{args.rounds}: {', '.join(order)}")
            for scenario in args.scenarios:
                for variant in order:
                    value = run_variant(scenario, variant, stores, args)
                    rounds[f"{scenario}_{variant}"].append(value)
                    log(f"  {scenario}_{variant:<9} {value:>12,.0f} events/s")
    finally:
        stores.close()
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    ratios = ratios_of(rounds, args.scenarios)
    print(f"\n{'variant':<18} {'events/s':>12}")
    for name, value in medians.items():
        print(f"{name:<18} {value:>12,.0f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<40} {value:.3f}")
    print(
        f"\n{args.rounds} round(s) on {args.store} in {time.perf_counter() - began:.0f} s; "
        "medians, higher is better."
    )
    if args.json:
        result = {
            "scenarios": {k: round(v, 1) for k, v in medians.items()},
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "rounds": rounds,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
