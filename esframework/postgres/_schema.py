"""The PostgreSQL store's schema, as numbered migrations.

The migrations themselves live in `_schema_1_to_4.py`, `_schema_6_to_8.py`, `_schema_9.py`,
`_schema_10.py` and `_schema_11.py`. Never edit a released migration: append a new one.
"""

from __future__ import annotations

from typing import Final

from esframework.postgres._migration import Migration
from esframework.postgres._schema_1_to_4 import MIGRATIONS_1_TO_4
from esframework.postgres._schema_6_to_8 import MIGRATIONS_6_TO_8
from esframework.postgres._schema_9 import MIGRATIONS_9
from esframework.postgres._schema_10 import MIGRATIONS_10
from esframework.postgres._schema_11 import MIGRATIONS_11

__all__ = ["MIGRATIONS", "Migration"]

MIGRATIONS: Final = (
    *MIGRATIONS_1_TO_4,
    *MIGRATIONS_6_TO_8,
    *MIGRATIONS_9,
    *MIGRATIONS_10,
    *MIGRATIONS_11,
)
