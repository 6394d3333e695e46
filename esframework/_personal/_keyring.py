# WARNING: generated from _keyring_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The keys one read needs, fetched once per subject for the length of that read."""

from __future__ import annotations

from collections.abc import Iterable

from esframework._personal._keys import KeyStore
from esframework._personal._sealing import MARKER_TEXT, Keys, sealed_subjects

__all__ = ["Keyring"]


class Keyring:
    """Fetches the keys that unsealing stored documents needs, each subject's once.

    Documents without sealed fields (most events) cost a substring test: no parse, no set,
    no call to the key store.
    """

    __slots__ = ("_asked", "_keys", "_store")

    def __init__(self, keys: KeyStore) -> None:
        self._store = keys
        self._keys: dict[str, bytes | None] = {}
        self._asked: set[str] = set()

    def for_data(self, *documents: str) -> Keys:
        """Return keys for every subject the stored JSON `documents` are sealed for."""
        if len(documents) == 1 and MARKER_TEXT not in documents[0]:
            return self._keys  # the common case, one event without personal data
        return self.for_all(documents)

    def for_all(self, documents: Iterable[str]) -> Keys:
        """Like `for_data`, for many documents (a page of events) at once."""
        wanted: set[str] = set()
        for data in documents:
            wanted |= sealed_subjects(data)
        wanted -= self._asked
        if wanted:
            self._keys.update(self._store.personal_data_keys(wanted))
            self._asked |= wanted
        return self._keys
