"""How the SQLite store reports sqlite3's errors: as the framework's, the original as cause."""

from __future__ import annotations

import sqlite3
from types import TracebackType

from esframework.errors import StoreError, StoreUnavailableError

__all__ = ["SQLiteErrors"]


class SQLiteErrors:
    """Turns sqlite3 errors into the framework's, keeping the original as the cause."""

    def __init__(self, message: str) -> None:
        self._message = message

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise StoreUnavailableError(f"{self._message}: {exc}") from exc
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{self._message}: {exc}") from exc
