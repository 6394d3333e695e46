"""Partitioned subscriptions: every event once across partitions, in stream order, a fixed count."""

from __future__ import annotations

import runpy
import zlib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esframework import (
    Envelope,
    Partition,
    Repository,
    Subscription,
    async_partitioned,
    async_rebuild_partitions,
    partitioned,
    rebuild_partitions,
)
from esframework.errors import PartitionCountError
from tests.domain import Wallet
from tests.subscriptions.conftest import Harness, Sql

TABLE = "applied"


def write(harness: Harness, wallets: int, deposits: int, prefix: str = "w") -> None:
    repository = Repository(Wallet, store=harness.store)
    for i in range(wallets):
        wallet = Wallet.open(f"{prefix}{i}", "owner")
        for _ in range(deposits):
            wallet.add(Decimal(1))
        repository.save(wallet)


def recorder(harness: Harness, part: int) -> Any:
    table = harness.table(TABLE)

    def handle(envelope: Envelope[Any], sql: Sql) -> None:
        sql(
            f"INSERT INTO {table} (position, stream_id, version, part) VALUES (?, ?, ?, ?)",
            envelope.position,
            envelope.stream_id,
            envelope.version,
            part,
        )

    return handle


def create_table(harness: Harness) -> None:
    serial = "BIGSERIAL" if harness.on_postgres else "INTEGER"
    harness.query(
        f"CREATE TABLE {harness.table(TABLE)} (seq {serial} PRIMARY KEY, position BIGINT, "
        "stream_id TEXT, version INTEGER, part INTEGER)"
    )


def reset(harness: Harness) -> Any:
    table = harness.table(TABLE)
    return lambda sql: sql(f"DELETE FROM {table}")


def partition_worker(harness: Harness, index: int, count: int, *, projection: bool = False) -> Any:
    """A worker for partition `index` of `count` of subscription "test"."""
    options: dict[str, Any] = {}
    if count > 1:
        options["name"] = f"test:{index}/{count}"
        options["partition"] = Partition("test", index, count)
    if projection:
        options["reset"] = reset(harness)
    return harness.worker(recorder(harness, index), batch_size=7, **options)


def applied(harness: Harness) -> list[tuple[int, str, int, int]]:
    return [
        (p, s, v, k)
        for p, s, v, k in harness.query(
            f"SELECT position, stream_id, version, part FROM {harness.table(TABLE)} ORDER BY seq"
        )
    ]


def assert_each_event_once_in_stream_order(harness: Harness, count: int) -> None:
    rows = applied(harness)
    positions = [p for p, _, _, _ in rows]
    assert sorted(positions) == [e.position for e in harness.store.iter_all()], (
        "an event was applied twice or skipped"
    )
    versions: dict[str, list[int]] = defaultdict(list)
    parts: dict[str, set[int]] = defaultdict(set)
    for _, stream, version, part in rows:
        versions[stream].append(version)
        parts[stream].add(part)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{stream} out of order: {seen}"
        (part,) = parts[stream]
        assert Partition("test", part, count).owns(stream) if count > 1 else part == 0


def test_partitions_share_the_streams_each_event_once_in_order(harness: Harness) -> None:
    """Three partitions: together every event once, each stream whole in one, in order."""
    create_table(harness)
    write(harness, wallets=24, deposits=4)
    workers = [partition_worker(harness, k, 3) for k in range(3)]
    for worker in workers:
        worker.run(until_caught_up=True)
    assert_each_event_once_in_stream_order(harness, 3)
    assert {k for _, _, _, k in applied(harness)} == {0, 1, 2}, "a partition got no streams"
    write(harness, wallets=6, deposits=2, prefix="x")  # interleaved runs keep it
    for worker in reversed(workers):
        worker.run(until_caught_up=True)
    assert_each_event_once_in_stream_order(harness, 3)
    for k in range(3):
        assert harness.store.load_checkpoint(f"test:{k}/3") == harness.store.head()


def test_another_partition_count_refuses_to_start(harness: Harness) -> None:
    """Checkpoints made by 2 partitions: workers of 3, or unpartitioned, refuse, naming both."""
    create_table(harness)
    write(harness, wallets=4, deposits=1)
    partition_worker(harness, 0, 2).run(until_caught_up=True)
    with pytest.raises(PartitionCountError, match=r"runs as 2 partition.*configured with 3") as e:
        partition_worker(harness, 1, 3).run(until_caught_up=True)
    assert (e.value.subscription, e.value.found, e.value.configured) == ("test", 2, 3)
    with pytest.raises(PartitionCountError, match=r"runs as 2 partition.*configured with 1"):
        partition_worker(harness, 0, 1).run(until_caught_up=True)
    assert harness.store.load_checkpoint("test:1/3") is None, "the refused worker moved on"
    partition_worker(harness, 1, 2).run(until_caught_up=True)  # the recorded count runs
    assert_each_event_once_in_stream_order(harness, 2)


def test_partitioning_a_subscription_that_ran_unpartitioned_refuses(harness: Harness) -> None:
    """An unpartitioned checkpoint counts as 1 partition: partitions would apply it all again."""
    create_table(harness)
    write(harness, wallets=3, deposits=1)
    partition_worker(harness, 0, 1).run(until_caught_up=True)
    with pytest.raises(PartitionCountError, match=r"runs as 1 partition.*configured with 4"):
        partition_worker(harness, 2, 4).run(until_caught_up=True)


def test_rebuild_changes_the_count_and_replays_every_event_once(harness: Harness) -> None:
    """2 partitions rebuilt as 3: one reset, every event once again, and 3 is now the count."""
    create_table(harness)
    write(harness, wallets=12, deposits=3)
    for k in range(2):
        partition_worker(harness, k, 2).run(until_caught_up=True)
    base = partition_worker(harness, 0, 1, projection=True)
    plain = base._target.subscription if harness.is_async else base.subscription
    if harness.is_async:
        parts = async_partitioned(plain, 3)
        assert harness.loop is not None
        progress = harness.loop.run(async_rebuild_partitions(harness.raw, parts))
    else:
        progress = rebuild_partitions(harness.raw, partitioned(plain, 3))
    assert [p.caught_up for p in progress] == [True, True, True]
    rows = applied(harness)
    assert {k for _, _, _, k in rows} == {0}  # the rebuilt handler records part 0: replayed
    assert_each_event_once_in_stream_order_ignoring_part(harness)
    with pytest.raises(PartitionCountError, match=r"runs as 3 partition.*configured with 2"):
        partition_worker(harness, 0, 2).run(until_caught_up=True)


def assert_each_event_once_in_stream_order_ignoring_part(harness: Harness) -> None:
    rows = applied(harness)
    assert sorted(p for p, _, _, _ in rows) == [e.position for e in harness.store.iter_all()]
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version, _ in rows:
        versions[stream].append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


def test_partitioned_names_and_validation() -> None:
    """Partition k of N is `name:k/N`; a count of 1 is the subscription itself."""
    subscription = Subscription(name="balances", handler=lambda _envelope, _connection: None)
    parts = partitioned(subscription, 4)
    assert [p.name for p in parts] == [f"balances:{k}/4" for k in range(4)]
    assert [p.name for p in partitioned(subscription, 4, indexes=[3, 1])] == [
        "balances:1/4",
        "balances:3/4",
    ]
    assert partitioned(subscription, 1) == [subscription]
    with pytest.raises(ValueError, match=r"not in 0\.\.3"):
        partitioned(subscription, 4, indexes=[4])
    with pytest.raises(ValueError, match="1 to 1024 partitions"):
        partitioned(subscription, 0)
    with pytest.raises(ValueError, match="a partition already"):
        partitioned(parts[0], 2)
    # The hash is stable: the same streams land in the same partitions in every process.
    assert [k for k in range(4) if Partition("b", k, 4).owns("account-1")] == [
        zlib.crc32(b"account-1") % 4
    ]


def test_the_docs_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/snippets/partitions.py, shown in the subscriptions page, runs as the page says."""
    runpy.run_path(
        str(Path(__file__).parents[2] / "docs/snippets/partitions.py"), run_name="__main__"
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "deposited: 55"
    assert "runs as 3 partition(s), but this worker is configured with 2" in out[1]
    assert out[2] == "deposited after rebuilding as 2 partitions: 55"
