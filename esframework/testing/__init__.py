"""Helpers for testing code built on esframework.

- `scenario(Aggregate).given(*events).when(command).then(*events)`: test aggregates' rules
  without a store.
- pytest fixtures for every store: add `pytest_plugins = ["esframework.testing.fixtures"]` to
  your top-level conftest.py (see `esframework.testing.fixtures`).
"""

from esframework.testing._scenario import Outcome, Scenario, scenario

__all__ = ["Outcome", "Scenario", "scenario"]
