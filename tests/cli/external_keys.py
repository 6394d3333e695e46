"""A key service apart from the event store, for `--keys`: an SQLite file of its own."""

from __future__ import annotations

import os

from esframework import SQLiteEventStore

NOT_A_KEY_STORE = object()


def key_service() -> SQLiteEventStore:
    return SQLiteEventStore(os.environ["ESFRAMEWORK_CLI_KEYS_DB"])
