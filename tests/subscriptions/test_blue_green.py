"""Blue/green rebuilds that reuse a version's name: the new build starts from the first event."""

from __future__ import annotations

from typing import Any

import pytest

from esframework import (
    BlueGreen,
    Envelope,
    Repository,
    Subscription,
    SubscriptionStore,
    SubscriptionWorker,
    execute_sql,
)
from esframework._stopping import Stopper
from tests.domain import Wallet


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> SubscriptionStore[Any]:
    store: SubscriptionStore[Any] = request.getfixturevalue(f"{request.param}_store")
    return store


class Seen:
    """A read model of one version: one row per event it was given."""

    def __init__(self, version: str) -> None:
        self.table = f"seen_{version}"

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        execute_sql(
            connection, f"INSERT INTO {self.table} (id) VALUES (%s)", (str(envelope.event_id),)
        )

    def reset(self, connection: Any) -> None:
        execute_sql(connection, f"DELETE FROM {self.table}")


def subscription(version: str) -> Subscription[Any]:
    return Subscription(name=f"seen-{version}", handler=Seen(version))


SEEN = BlueGreen(
    projection="seen",
    subscription=subscription,
    create_tables=lambda c, v: execute_sql(
        c, f"CREATE TABLE IF NOT EXISTS seen_{v} (id TEXT PRIMARY KEY)"
    ),
    drop_tables=lambda c, v: execute_sql(c, f"DROP TABLE IF EXISTS seen_{v}"),
)


def served(store: SubscriptionStore[Any]) -> int:
    with store.transaction() as connection:
        table = f"seen_{SEEN.active(connection)}"
        return int(execute_sql(connection, f"SELECT count(*) FROM {table}")[0][0])


def open_wallets(store: SubscriptionStore[Any], first: int, count: int) -> None:
    repository = Repository(Wallet, store=store)
    for n in range(first, first + count):
        repository.save(Wallet.open(f"w-{n}", owner="o"))


def test_a_version_rebuilt_after_it_was_retired_replays_every_event(
    store: SubscriptionStore[Any],
) -> None:
    """Blue serves, green is built and switched to, blue is retired; later blue is built
    again beside green. Its tables are new, so its build must start from the first event:
    resumed from the checkpoint the retired blue left behind, it would be switched to with
    only the events appended since, and readers would see a half-built read model."""
    SEEN.install(store, "blue")
    open_wallets(store, 0, 5)
    SubscriptionWorker(store, subscription("blue")).run(until_caught_up=True)
    assert served(store) == 5
    assert SEEN.rebuild(store, "green")
    SEEN.retire(store, "blue")
    open_wallets(store, 5, 3)
    SubscriptionWorker(store, subscription("green")).run(until_caught_up=True)
    assert served(store) == 8

    assert SEEN.rebuild(store, "blue")
    assert served(store) == 8


def test_a_version_whose_subscription_starts_at_the_end_is_built_from_the_first_event(
    store: SubscriptionStore[Any],
) -> None:
    """`rebuild` builds a version from the first event. A subscription made to start at the
    end (as a live projection interested only in what happens from its deployment on may
    be) began the new version at the head instead: readers were switched to a read model
    holding none of the events the live version showed them."""

    def from_the_end(version: str) -> Subscription[Any]:
        return Subscription(name=f"seen-{version}", handler=Seen(version), start="end")

    seen = BlueGreen(
        projection="seen",
        subscription=from_the_end,
        create_tables=SEEN.create_tables,
        drop_tables=SEEN.drop_tables,
    )
    seen.install(store, "blue")
    open_wallets(store, 0, 5)
    SubscriptionWorker(store, subscription("blue")).run(until_caught_up=True)
    assert served(store) == 5
    assert seen.rebuild(store, "green")
    assert served(store) == 5


class _CountingStopper(Stopper):
    """Counts the rebuild's waits, and stops it at the first (or, spinning, after many
    looks at whether it is stopped)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        if self.looks > 10_000:
            self.set()
        return super().is_set()

    def sleep(self, seconds: float) -> bool:
        assert seconds > 0  # a poll interval
        self.waits += 1
        self.set()
        return True


def test_a_rebuild_whose_version_another_instance_builds_waits_between_looks(
    store: SubscriptionStore[Any],
) -> None:
    """While another instance holds the new version's lease, each round of `rebuild` moves
    nothing on and the switch finds the version behind: it waits a poll before the next
    look. (It went round at once, spinning a core until the other instance finished.)"""
    SEEN.install(store, "blue")
    open_wallets(store, 0, 3)
    SubscriptionWorker(store, subscription("blue")).run(until_caught_up=True)
    other = store.lease(subscription("green").name)
    assert other.acquire()
    try:
        stopper = _CountingStopper()
        assert not SEEN.rebuild(store, "green", stopper=stopper)
        assert stopper.waits == 1
    finally:
        other.release()
    with store.transaction() as connection:
        assert SEEN.active(connection) == "blue"
