"""Helpers for testing code built on esframework.

- `scenario(Aggregate).given(*events).when(command).then(*events)`: test aggregates' rules
  without a store.
- `assert_snapshot_matches_replay(repository, aggregate_id)`: check that a snapshot restores
  exactly what a full replay gives (and `assert_snapshot_matches_replay_async`).
- pytest fixtures for every store: add `pytest_plugins = ["esframework.testing.fixtures"]` to
  your top-level conftest.py (see `esframework.testing.fixtures`).
"""

from esframework.testing._scenario import Outcome, Scenario, scenario
from esframework.testing._snapshots import (
    assert_snapshot_matches_replay,
    assert_snapshot_matches_replay_async,
)

__all__ = [
    "Outcome",
    "Scenario",
    "assert_snapshot_matches_replay",
    "assert_snapshot_matches_replay_async",
    "scenario",
]
