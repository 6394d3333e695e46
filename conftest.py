"""Runs every Python block of README.md and docs/*.md as a test, so the docs cannot go stale.

Each document runs in a fresh temporary directory, so the files its examples create (SQLite
databases) do not land in the checkout. Documents that need PostgreSQL read the server from
ESFRAMEWORK_TEST_DSN in an invisible setup block.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser


def _enter_temporary_directory(namespace: dict[str, Any]) -> None:
    namespace["_previous_directory"] = Path.cwd()
    os.chdir(tempfile.mkdtemp(prefix="esframework-docs-"))


def _leave_temporary_directory(namespace: dict[str, Any]) -> None:
    os.chdir(namespace["_previous_directory"])


pytest_plugins = ["esframework.testing.fixtures", "tests.fixtures.postgres"]

pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    setup=_enter_temporary_directory,
    teardown=_leave_temporary_directory,
).pytest()
