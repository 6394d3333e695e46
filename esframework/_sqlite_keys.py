"""The SQLite store's table of data subjects' keys (see "Personal data and retention").

A forgotten subject keeps its row with no key, so nothing of theirs is sealed again. The
store's connection runs with `secure_delete`, so SQLite overwrites the freed bytes of a
deleted key (and of any row a read model deletes or rewrites) with zeros instead of leaving
them in free pages of the file. The file is in WAL mode, though: the write-ahead log keeps
earlier versions of the key's page until a checkpoint copies the log into the file and the
log is truncated, which `purge_forgotten_keys` does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from esframework._personal._sealing import new_key, validate_subject
from esframework.errors import StoreError

__all__ = ["KEYS_SCHEMA", "SQLitePersonalKeys"]

# Appended to `_sqlite_schema.SCHEMA` (applied once per file, in order: never edit these).
KEYS_SCHEMA: Final = (
    """
    CREATE TABLE personal_data_keys (
        subject TEXT PRIMARY KEY,
        key BLOB,
        created_at TEXT NOT NULL,
        forgotten_at TEXT,
        CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
    )
    """,
)

_BATCH: Final = 500  # subjects per statement, well under SQLite's limit of host parameters


class _Store(Protocol):
    path: str
    _lock: threading.RLock

    def _db(self) -> sqlite3.Connection: ...

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _writing(self, action: str, what: str) -> AbstractContextManager[sqlite3.Connection]: ...

    def _errors(self, action: str, what: str) -> AbstractContextManager[None]: ...


class SQLitePersonalKeys:
    """`personal_data_keys` and `delete_personal_data_key` of the SQLite store."""

    def personal_data_keys(
        self: _Store, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        if create:
            for subject in wanted:
                validate_subject(subject)
            with self._writing("create personal data keys in", "the store") as db:
                now = datetime.now(UTC).isoformat()
                db.executemany(
                    "INSERT INTO personal_data_keys (subject, key, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (subject) DO NOTHING",
                    [(subject, new_key(), now) for subject in wanted],
                )
                return _select(db, wanted)
        with self._reading() as db, self._errors("read personal data keys of", "the store"):
            return _select(db, wanted)

    def delete_personal_data_key(self: _Store, subject: str) -> None:
        validate_subject(subject)
        with self._writing("forget subject", repr(subject)) as db:
            now = datetime.now(UTC).isoformat()
            db.execute(
                "INSERT INTO personal_data_keys (subject, key, created_at, forgotten_at) "
                "VALUES (?, NULL, ?, ?) ON CONFLICT (subject) DO UPDATE SET key = NULL, "
                "forgotten_at = coalesce(personal_data_keys.forgotten_at, excluded.forgotten_at)",
                (subject, now, now),
            )

    def purge_forgotten_keys(self: _Store) -> None:
        """Make forgotten keys leave the store's files: checkpoint and truncate the WAL.

        A deleted key's bytes are zeroed in the database file's page (`secure_delete`), but
        the write-ahead log beside it (`-wal`) still holds the earlier versions of that page
        until a checkpoint has copied the log into the file and the log is truncated. This
        runs that checkpoint (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting up to the store's
        `timeout` for other connections' reads and writes to end. `esframework purge-keys`
        calls it.

        Raises:
            StoreError: Another connection kept reading or writing: the log could not be
                truncated. Nothing is lost; run it again.
        """
        with self._lock, self._errors("purge forgotten keys from", "the store"):
            db = self._db()
            if db.in_transaction:
                msg = "cannot purge forgotten keys inside a transaction"
                raise StoreError(msg)
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            msg = (
                f"could not truncate the write-ahead log of SQLite store {self.path}: another "
                "connection is reading or writing; run it again"
            )
            raise StoreError(msg)


def _select(db: sqlite3.Connection, subjects: list[str]) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for start in range(0, len(subjects), _BATCH):
        batch = subjects[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        rows: Any = db.execute(
            f"SELECT subject, key FROM personal_data_keys WHERE subject IN ({marks})",
            batch,
        )
        found.update((subject, None if key is None else bytes(key)) for subject, key in rows)
    return found
