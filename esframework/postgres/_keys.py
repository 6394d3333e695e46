# WARNING: generated from _keys_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The keys of data subjects on PostgreSQL (migration 7): methods of the store."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, Final, Protocol, TypeVar

import psycopg

from esframework._personal._sealing import new_key, validate_subject
from esframework.errors import StoreError
from esframework.postgres._sql import Statements

__all__ = ["PersonalKeys"]

# VACUUM (VERBOSE)'s count of the dead row versions it had to keep.
_KEPT: Final = re.compile(r"(\d+) dead row versions cannot be removed yet")

T = TypeVar("T")


class _Store(Protocol):
    """What these methods use of the store they are mixed into."""

    _statements: Statements
    _set_lock_timeout: tuple[bytes, dict[str, object]]
    conninfo: str

    def _run(self, doing: str, work: Callable[[psycopg.Connection[Any]], T]) -> T: ...


class PersonalKeys:
    """`personal_data_keys` and `delete_personal_data_key` of the PostgreSQL store."""

    def personal_data_keys(
        self: _Store, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        statements = self._statements
        if create:
            for subject in wanted:
                validate_subject(subject)

        def work(conn: psycopg.Connection[Any]) -> dict[str, bytes | None]:
            cursor = conn.execute(statements.personal_keys, (wanted,))
            found = dict(cursor.fetchall())
            missing = [subject for subject in wanted if subject not in found]
            if create and missing:
                conn.execute(
                    statements.create_personal_keys, (missing, [new_key() for _ in missing])
                )
                cursor = conn.execute(statements.personal_keys, (missing,))
                found.update(cursor.fetchall())
            return {s: None if key is None else bytes(key) for s, key in found.items()}

        return self._run("read personal data keys", work)

    def purge_forgotten_keys(self: _Store) -> None:
        """Rewrite the key table, so that forgotten keys leave the database's files.

        Run it after forgetting (`esframework purge-keys` does): `VACUUM FULL` of the small
        key table, which holds its exclusive lock for as long as copying its live rows
        takes (loads and saves that read keys wait that long). Needs the table's owner, as
        migrations do. It waits for that lock at most the store's `lock_timeout`, as
        appends do: an open transaction that read keys holds the lock, and reads of keys
        queue behind the waiting purge meanwhile.

        Raises:
            StoreError: A transaction open somewhere in the database (anything older than
                the forgetting) may still see a forgotten key, so PostgreSQL kept that row
                version in the rewritten table; or an open transaction held the table's
                lock for longer than `lock_timeout`. Nothing is lost: run it again once
                that transaction ends.
        """
        connection = psycopg.Connection.connect(self.conninfo, autocommit=True)
        details: list[str] = []
        connection.add_notice_handler(lambda notice: details.append(notice.message_detail or ""))
        with connection:
            connection.execute(*self._set_lock_timeout)
            try:
                connection.execute(self._statements.purge_keys)
            except psycopg.errors.LockNotAvailable as error:
                msg = (
                    f"the key table of schema {self._statements.schema!r} is locked by an "
                    "open transaction (one that read keys) for longer than the store's "
                    "lock_timeout: run purge-keys again once it ends"
                )
                raise StoreError(msg) from error
        kept = sum(int(found) for detail in details for found in _KEPT.findall(detail))
        if kept:
            msg = (
                f"{kept} forgotten key row version(s) of schema {self._statements.schema!r} "
                "are still visible to an open transaction and stay in the key table: "
                "run purge-keys again once it ends"
            )
            raise StoreError(msg)

    def delete_personal_data_key(self: _Store, subject: str) -> None:
        validate_subject(subject)
        statements = self._statements

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(statements.forget_subject, (subject,))

        self._run(f"forget subject {subject!r}", work)
