"""The code shown in the docs pages is the code that runs and is tested."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).parents[1] / "tools" / "docs_code.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_code", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_marked_block_matches_its_source() -> None:
    tool = load_tool()
    assert tool.stale_pages() == [], "run: python tools/docs_code.py"


def test_a_changed_source_makes_its_block_stale(tmp_path: Path) -> None:
    tool = load_tool()
    (tmp_path / "code.py").write_text("# --8<-- [start:part]\nx = 1\n# --8<-- [end:part]\ny = 2\n")
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n<!-- source: code.py:part -->\n```py\nx = 0\n```\n")
    tool.ROOT = tmp_path
    assert tool.render(page) == "Text.\n\n<!-- source: code.py:part -->\n```py\nx = 1\n```\n"


def test_no_page_still_uses_include_markers() -> None:
    docs = Path(__file__).parents[1] / "docs"
    for page in docs.rglob("*.md"):
        assert '--8<-- "' not in page.read_text(encoding="utf-8"), page


def test_an_unknown_region_is_an_error(tmp_path: Path) -> None:
    tool = load_tool()
    (tmp_path / "code.py").write_text("x = 1\n")
    page = tmp_path / "page.md"
    page.write_text("<!-- source: code.py:missing -->\n```py\n```\n")
    tool.ROOT = tmp_path
    with pytest.raises(SystemExit, match="no region"):
        tool.render(page)


def test_a_region_shows_no_gaps_where_markers_were(tmp_path: Path) -> None:
    """Blank lines around a region, or around a nested region's markers, do not show."""
    tool = load_tool()
    (tmp_path / "code.py").write_text(
        "# --8<-- [start:outer]\nx = 1\n\n\n# --8<-- [start:inner]\ny = 2\n"
        "# --8<-- [end:inner]\n\n\nz = 3\n\n\n# --8<-- [end:outer]\n"
    )
    page = tmp_path / "page.md"
    page.write_text("<!-- source: code.py:outer -->\n```py\n```\n")
    tool.ROOT = tmp_path
    assert tool.render(page) == (
        "<!-- source: code.py:outer -->\n```py\nx = 1\n\n\ny = 2\n\n\nz = 3\n```\n"
    )
