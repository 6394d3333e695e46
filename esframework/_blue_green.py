"""Rebuild a projection next to the live one, then switch its readers over at once.

Each version of a projection has its own tables (the caller names them, usually with a
suffix) and its own subscription name, so its own checkpoint and lease. One small table in
the store's database, `esframework_projection_versions`, holds the version that serves
readers, one row per projection. Readers look the row up and read that version's tables in
one transaction; the switch is an update of that row, so a reader sees the old version or
the new one, whole, never a mix and never an empty one. A row and a plain `UPDATE` work
alike on SQLite and PostgreSQL, where swapping a view would need DDL that SQLite cannot do
inside a reader's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs

from esframework._portable_sql import execute_sql, execute_sql_async
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._stopping import Stopper
from esframework._subscription_spec import Subscription
from esframework._subscription_store import SubscriptionStore
from esframework._subscription_worker import SubscriptionWorker
from esframework.errors import ProjectionVersionError

__all__ = ["PROJECTION_VERSIONS_TABLE", "BlueGreen", "replaying"]

PROJECTION_VERSIONS_TABLE = "esframework_projection_versions"
"""The table of the version that serves each blue/green projection's readers."""

_replaying: ContextVar[bool] = ContextVar("esframework_replaying", default=False)


def replaying() -> bool:
    """Whether the calling handler is being fed a rebuild's replay of past events.

    True inside `BlueGreen.rebuild` (in its thread or task only: the live workers running
    meanwhile see False). A handler with side effects (sending a command, an e-mail) checks
    it and skips them, as they happened when the events were first delivered.
    """
    return _replaying.get()


@contextmanager
def _replay() -> Iterator[None]:
    token = _replaying.set(True)
    try:
        yield
    finally:
        _replaying.reset(token)


@attrs.frozen
class BlueGreen:
    """A projection whose versions are built side by side and switched in one update.

    Attributes:
        projection: The projection's name, its key in `PROJECTION_VERSIONS_TABLE`.
        subscription: Makes the subscription of a version: its own name (the checkpoint)
            and a handler writing that version's tables.
        create_tables: Creates a version's tables `(connection, version)`, if absent.
        drop_tables: Drops a version's tables `(connection, version)`.
    """

    projection: str
    subscription: Callable[[str], Subscription[Any]]
    create_tables: Callable[[Any, str], None]
    drop_tables: Callable[[Any, str], None]

    def install(self, store: SubscriptionStore[Any], version: str) -> None:
        """Create the versions table and `version`'s tables; make it active if none is."""
        with store.transaction() as connection:
            execute_sql(
                connection,
                f"CREATE TABLE IF NOT EXISTS {PROJECTION_VERSIONS_TABLE} "
                "(projection TEXT PRIMARY KEY, version TEXT NOT NULL)",
            )
            self.create_tables(connection, version)
            execute_sql(
                connection,
                f"INSERT INTO {PROJECTION_VERSIONS_TABLE} (projection, version) VALUES (%s, %s) "
                "ON CONFLICT (projection) DO NOTHING",
                (self.projection, version),
            )

    def active(self, connection: Any) -> str:
        """The version serving readers; look it up in the reader's own transaction."""
        rows = execute_sql(
            connection,
            f"SELECT version FROM {PROJECTION_VERSIONS_TABLE} WHERE projection = %s",
            (self.projection,),
        )
        if not rows:
            raise ProjectionVersionError(self.projection, None, "not installed")
        version: str = rows[0][0]
        return version

    async def active_async(self, connection: Any) -> str:
        """`active`, on an asyncio store's connection."""
        rows = await execute_sql_async(
            connection,
            f"SELECT version FROM {PROJECTION_VERSIONS_TABLE} WHERE projection = %s",
            (self.projection,),
        )
        if not rows:
            raise ProjectionVersionError(self.projection, None, "not installed")
        version: str = rows[0][0]
        return version

    def rebuild(
        self,
        store: SubscriptionStore[Any],
        version: str,
        *,
        serializer: Serializer = DEFAULT_SERIALIZER,
        stopper: Stopper | None = None,
    ) -> bool:
        """Build `version` from the first event, then make it the active one.

        The live version's workers keep running meanwhile. The new version catches up
        (with `replaying()` true), and the switch happens once its checkpoint has reached
        the live version's: readers then never see it behind what they saw before. From
        then on, run the new version's subscription instead of the old one, then `retire`
        the old one. Returns False, with the old version still active, if stopped first.

        Raises:
            ProjectionVersionError: `version` is the active one, or nothing is installed.
        """
        stopper = stopper or Stopper()
        with store.transaction() as connection:
            live = self.active(connection)
            if live == version:
                raise ProjectionVersionError(self.projection, version, "is the active version")
            self.create_tables(connection, version)
        # From the first event whatever the subscription says: started at the head (as a
        # live projection may be), the version would hold none of what readers see now.
        new = attrs.evolve(self.subscription(version), start="beginning")
        worker = SubscriptionWorker(store, new, serializer=serializer, stopper=stopper)
        with _replay():
            while not stopper.is_set():
                before = worker.progress.position
                worker.run(until_caught_up=True)
                if stopper.is_set():
                    break
                # The live worker may be ahead of the catch-up's end: go round until not.
                if self._switch(store, live, new.name, version):
                    return True
                # A round that moved nothing on (another instance holds this version's
                # lease, and builds it) waits a poll before looking again, not spinning.
                if worker.progress.position == before and stopper.sleep(new.poll_interval):
                    break
        return False

    def _switch(self, store: SubscriptionStore[Any], live: str, new: str, version: str) -> bool:
        """Make `version` active if its checkpoint has reached the live version's.

        The live checkpoint's row is locked first (SQLite's write transaction holds the
        whole file): the live worker cannot move on between the check and the switch, so
        readers never find the new version behind what the old one showed them.
        """
        live_name = self.subscription(live).name
        with store.transaction() as connection:
            execute_sql(
                connection,
                "UPDATE subscription_checkpoints SET last_position = last_position "
                "WHERE subscription_id = %s",
                (live_name,),
            )
            rows = execute_sql(
                connection,
                "SELECT subscription_id, last_position FROM subscription_checkpoints "
                "WHERE subscription_id IN (%s, %s)",
                (live_name, new),
            )
            positions = dict(rows)
            if positions.get(new, 0) < positions.get(live_name, 0):
                return False
            execute_sql(
                connection,
                f"UPDATE {PROJECTION_VERSIONS_TABLE} SET version = %s WHERE projection = %s",
                (version, self.projection),
            )
        return True

    def retire(self, store: SubscriptionStore[Any], version: str) -> None:
        """Drop an inactive version's tables, checkpoint and parked events (stop its workers
        first).

        They go together: a later `rebuild` of the same version (blue/green names taking
        turns) finds new, empty tables and no checkpoint, and replays from the first event.
        A checkpoint left behind would have it resume where the retired tables stood, and
        switch readers to a read model missing everything before.

        Raises:
            ProjectionVersionError: `version` is the active one.
        """
        name = self.subscription(version).name
        with store.transaction() as connection:
            if self.active(connection) == version:
                raise ProjectionVersionError(self.projection, version, "is the active version")
            self.drop_tables(connection, version)
            execute_sql(
                connection,
                "DELETE FROM subscription_checkpoints WHERE subscription_id = %s",
                (name,),
            )
            store.unpark(connection, name, None)
