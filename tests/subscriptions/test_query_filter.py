"""Subscriptions filtered by query: only the matching events, in the global order, with
aggregate events and tagged events side by side, on every backend."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from esframework import Envelope, Query, QueryItem, Serializer
from tests.domain import MoneyAdded, WalletOpened
from tests.subscriptions.conftest import Harness
from tests.subscriptions.test_delivery import record_into, save_wallets


def tagged_deposit(harness: Harness, stream: str, amount: int, *tags: str) -> None:
    record = Serializer().encode(MoneyAdded(amount=Decimal(amount)), event_id=uuid.uuid4())
    harness.store.append(stream, "TestWallet", [record._replace(tags=tags)], expected_version=0)


def test_a_query_subscription_sees_only_matching_events_in_global_order(
    harness: Harness,
) -> None:
    """Tagged events among untagged ones: the subscription gets exactly those its query
    matches, in position order, and its checkpoint reaches the head."""
    save_wallets(harness, 2)
    tagged_deposit(harness, "t1", 1, "vip")
    tagged_deposit(harness, "t2", 2, "vip", "eu")
    tagged_deposit(harness, "t3", 3, "eu")
    seen: list[Envelope[Any]] = []
    query = Query.of(QueryItem(tags=["vip"])) | Query.of(QueryItem(types=["TestWalletOpened"]))
    harness.worker(record_into(seen), query=query, batch_size=2).run(until_caught_up=True)
    expected = [e.position for e in harness.store.read_query(query).events]
    assert [e.position for e in seen] == expected
    assert [e.stream_id for e in seen if isinstance(e.event, MoneyAdded)] == ["t1", "t2"]
    assert sum(isinstance(e.event, WalletOpened) for e in seen) == 2
    assert harness.store.load_checkpoint("test") == harness.store.head()


def test_a_query_combines_with_the_other_filters(harness: Harness) -> None:
    """An event must pass the query and the event class filter alike."""
    save_wallets(harness, 2)
    tagged_deposit(harness, "t1", 1, "eu")
    seen: list[Envelope[Any]] = []
    harness.worker(
        record_into(seen),
        query=Query.of(QueryItem(tags=["eu"])),
        event_types=[WalletOpened],
    ).run(until_caught_up=True)
    assert seen == []
    assert harness.store.load_checkpoint("test") == harness.store.head()
    harness.worker(record_into(seen), name="eu", query=Query.of(QueryItem(tags=["eu"]))).run(
        until_caught_up=True
    )
    assert [e.stream_id for e in seen] == ["t1"]
