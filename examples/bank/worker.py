"""The bank's worker: the transfer process and the read-model projections.

esframework run examples.bank.worker:runner              # on ./bank.db
ESFRAMEWORK_DSN=postgresql://... esframework run examples.bank.worker:runner
"""

from __future__ import annotations

import os
from typing import Any

from esframework import Runner, SQLiteEventStore, Subscription, SubscriptionStore
from examples.bank.app import Bank
from examples.bank.process import transfer_process
from examples.bank.projections import create_tables, projections


def subscriptions(store: SubscriptionStore[Any]) -> list[Subscription[Any]]:
    """The transfer process and the projections, their tables created."""
    create_tables(store)
    return [transfer_process(Bank(store)), *projections()]


def build(store: SubscriptionStore[Any]) -> Runner[Any]:
    """The runner for every bank subscription over `store`."""
    return Runner(store, subscriptions(store))


def open_store(
    db: str = "bank.db", dsn: str | None = None, schema: str = "public"
) -> SubscriptionStore[Any]:
    """The bank's store: PostgreSQL (in `schema`) when a DSN is given, else the SQLite file."""
    if dsn:
        from esframework.postgres import PostgresEventStore

        store = PostgresEventStore(dsn, schema=schema)
        store.migrate()
        return store
    return SQLiteEventStore(db)


def runner() -> Runner[Any]:
    """For `esframework run`: the store named by ESFRAMEWORK_DSN, or ./bank.db."""
    return build(open_store(dsn=os.environ.get("ESFRAMEWORK_DSN")))
