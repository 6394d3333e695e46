"""Keep the code shown in the docs equal to the code that runs and is tested.

The docs pages show their code inline, so that they read well as plain Markdown (on GitHub, in
an editor) and not only on the built site. A code block that shows a tested file, or a region
of one, is preceded by a marker naming it:

    <!-- source: examples/bank/domain.py:account -->
    ```py title="examples/bank/domain.py"
    ...
    ```

A region is the text between `# --8<-- [start:NAME]` and `# --8<-- [end:NAME]` lines in the
source (the marker lines of regions nested inside are left out, and so are blank lines at
either end and a third blank line in a row). Without a region, the whole file is shown.

    python tools/docs_code.py          # rewrite every marked block from its source
    python tools/docs_code.py --check  # fail, naming each stale block, if any differs
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- source: (?P<path>[^:\s]+)(?::(?P<region>[\w-]+))? -->$")
REGION_LINE = re.compile(r"^\s*(#|--) --8<-- \[(?P<edge>start|end):(?P<name>[\w-]+)\]\s*$")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def region(path: str, name: str | None) -> list[str]:
    """The lines of `path` (relative to the project root) in region `name`, or all of it."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    inside = name is None
    shown: list[str] = []
    found = False
    for line in lines:
        edge = REGION_LINE.match(line)
        if edge and edge["name"] == name:
            found = True
            inside = edge["edge"] == "start"
            continue
        if inside and not edge:
            shown.append(line)
    if name is not None and not found:
        raise SystemExit(f"{path}: no region {name!r}")
    return _tidy(shown)


def _tidy(lines: list[str]) -> list[str]:
    """`lines` without blank lines at either end, and with no more than two in a row.

    The blank lines that set a region apart in its source, and those on both sides of a
    nested region's marker, would otherwise show as gaps in the page.
    """
    tidy: list[str] = []
    for line in lines:
        if not line.strip() and (not tidy or tidy[-2:] == ["", ""]):
            continue
        tidy.append("" if not line.strip() else line)
    while tidy and not tidy[-1]:
        tidy.pop()
    return tidy


def render(page: Path) -> str:
    """The page with every marked code block replaced by its source's current text."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        marker = MARKER.match(line)
        if not marker:
            continue
        if index >= len(lines) or not lines[index].startswith("```"):
            raise SystemExit(f"{page.relative_to(ROOT)}: a code block must follow {line}")
        fence = lines[index]
        out.append(fence)
        index += 1
        while index < len(lines) and lines[index] != "```":
            index += 1
        if index == len(lines):
            raise SystemExit(f"{page.relative_to(ROOT)}: unclosed code block after {line}")
        out.extend(region(marker["path"], marker["region"]))
        out.append("```")
        index += 1
    return "\n".join(out) + "\n"


def stale_pages() -> list[Path]:
    return [page for page in pages() if render(page) != page.read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        stale = stale_pages()
        for page in stale:
            print(f"{page.relative_to(ROOT)}: code differs from its source; run tools/docs_code.py")
        return 1 if stale else 0
    for page in pages():
        text = render(page)
        if text != page.read_text(encoding="utf-8"):
            page.write_text(text, encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
