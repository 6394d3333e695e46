"""Where the keys of data subjects live: the small interface a key service implements.

This module is the source of `_keys.py`, which `tools/async_to_sync.py` generates from it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

__all__ = ["AsyncKeyStore"]


class AsyncKeyStore(Protocol):
    """Keeps one key per data subject, and forgets subjects for good.

    Every event store implements it with a table of its own (`personal_data_keys`); pass
    another implementation (a key management service, say) to repositories and subscriptions
    as `keys=` to keep the keys out of the database.
    """

    async def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        """Return the key of each of `subjects`: None for a forgotten subject.

        A subject with no key yet is left out, unless `create` is set: then a new key is
        made (see `new_key`) and kept, and concurrent calls for one subject all get the same.
        """
        ...

    async def delete_personal_data_key(self, subject: str) -> None:
        """Delete the subject's key for good, and remember that the subject is forgotten.

        Idempotent: forgetting a forgotten (or unknown) subject leaves it forgotten.

        Raises:
            InvalidSubjectError: The subject id is empty or too long.
        """
        ...
