"""One numbered step of the PostgreSQL store's schema: the `Migration` record."""

from __future__ import annotations

from typing import LiteralString

import attrs

__all__ = ["Migration"]


@attrs.frozen
class Migration:
    """One numbered step of the schema: applied once per schema, in order.

    Attributes:
        version: The step's number (from 1); a schema's `esframework_migrations` table
            records each one applied.
        name: What the step does, in a few words (recorded with its version).
        statements: The SQL statements, run in order in the migrating transaction;
            `{schema}` stands for the quoted schema name, `{schema_name}` for it as a
            string literal.
    """

    version: int
    name: str
    # `{schema}` stands for the quoted schema name, `{schema_name}` for it as a string literal.
    statements: tuple[LiteralString, ...]
