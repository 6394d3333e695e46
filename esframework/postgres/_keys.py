# WARNING: generated from _keys_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The keys of data subjects on PostgreSQL (migration 7): methods of the store."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol, TypeVar

import psycopg

from esframework._personal._sealing import new_key, validate_subject
from esframework.postgres._sql import Statements

__all__ = ["PersonalKeys"]

T = TypeVar("T")


class _Store(Protocol):
    """What these methods use of the store they are mixed into."""

    _statements: Statements
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
        takes (saves that create keys wait that long). Needs the table's owner, as
        migrations do.
        """
        connection = psycopg.Connection.connect(self.conninfo, autocommit=True)
        with connection:
            connection.execute(self._statements.purge_keys)

    def delete_personal_data_key(self: _Store, subject: str) -> None:
        validate_subject(subject)
        statements = self._statements

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(statements.forget_subject, (subject,))

        self._run(f"forget subject {subject!r}", work)
