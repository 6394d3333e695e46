"""Subscriptions: stored events delivered in global order to handlers and projections.

This module is the source of `_subscriptions.py`, which `tools/async_to_sync.py` generates from it.

A worker runs one subscription: it takes the subscription's lease (one active instance), reads
events after its checkpoint in pages, and hands each page to the handler inside one
transaction of the store's database that also moves the checkpoint. A handler that writes its
read model through the connection it is given therefore has exactly-once effects: a crash
rolls back both the read-model changes and the checkpoint. Anything else a handler does
(send an email, call a service) happens at least once, and must be idempotent.

The names live in `_subscription_spec_async` (what a subscription is),
`_subscription_store_async` (what a store keeps for it, beside `AsyncEventStore`) and
`_subscription_worker_async` (what runs it); this module gathers them.
"""

from __future__ import annotations

from esframework._progress import Progress
from esframework._subscription_spec_async import AsyncHandler, AsyncProjection, AsyncSubscription
from esframework._subscription_store_async import (
    AsyncLease,
    AsyncListener,
    AsyncSubscriptionStore,
)
from esframework._subscription_worker_async import AsyncSubscriptionWorker

__all__ = [
    "AsyncHandler",
    "AsyncLease",
    "AsyncListener",
    "AsyncProjection",
    "AsyncSubscription",
    "AsyncSubscriptionStore",
    "AsyncSubscriptionWorker",
    "Progress",
]
