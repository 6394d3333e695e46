# WARNING: generated from _subscriptions_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""Subscriptions: stored events delivered in global order to handlers and projections."""

from __future__ import annotations

from esframework._progress import Progress
from esframework._subscription_spec import Handler, Projection, Subscription
from esframework._subscription_store import (
    Lease,
    Listener,
    SubscriptionStore,
)
from esframework._subscription_worker import SubscriptionWorker

__all__ = [
    "Handler",
    "Lease",
    "Listener",
    "Progress",
    "Projection",
    "Subscription",
    "SubscriptionStore",
    "SubscriptionWorker",
]
