"""The setup commands the README and the tutorial give install what the bank needs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# The bank's account owners are personal data, sealed with `cryptography`.
BANK_EXTRAS = {"personal"}

# Runs the demo with `cryptography` unimportable, as after a plain `pip install -e .`.
WITHOUT_CRYPTOGRAPHY = (
    "import runpy, sys; sys.modules['cryptography'] = None; "
    "sys.argv = ['examples.bank', *sys.argv[1:]]; "
    "runpy.run_module('examples.bank', run_name='__main__')"
)


def _installed_extras(command: str) -> set[str]:
    found = re.search(r"pip install -e '?\.(?:\[([a-z,-]+)\])?'?", command)
    assert found is not None, command
    return set(found.group(1).split(",")) if found.group(1) else set()


def test_the_bank_demo_needs_the_personal_extra(tmp_path: Path) -> None:
    """Without cryptography the demo stops at once, in one line naming the extra."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_CRYPTOGRAPHY, "--db", str(tmp_path / "bank.db"), "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    needs = "personal data needs the cryptography package: install esframework[personal]"
    assert done.stderr.splitlines()[-1:] == [f"error: {needs} (or cryptography)"]


@pytest.mark.parametrize("page", ["README.md", "docs/tutorial.md"])
def test_the_documented_setup_installs_what_the_demo_needs(page: str) -> None:
    """The one line that sets up and runs the demo installs the bank's extras."""
    text = (ROOT / page).read_text(encoding="utf-8")
    [command] = [
        line for line in text.splitlines() if "-m examples.bank demo" in line and "pip" in line
    ]
    assert _installed_extras(command) >= BANK_EXTRAS


def test_the_http_extra_installs_what_the_bank_needs() -> None:
    """`pip install -e '.[bank-http]'` (the asyncio how-to) is enough for the HTTP API."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["bank-http"]
    assert {f"esframework[{extra}]" for extra in BANK_EXTRAS} <= set(extras)


def test_the_readme_links_every_page_of_the_site() -> None:
    """Read as plain Markdown, the README is the way in: it links every page of the nav."""
    nav = re.findall(
        r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text("utf-8"), re.MULTILINE
    )
    assert len(nav) > 10  # the nav was read
    linked = set(re.findall(r"\]\(docs/([^)#]+\.md)", (ROOT / "README.md").read_text("utf-8")))
    assert sorted(set(nav) - {"index.md"} - linked) == []
