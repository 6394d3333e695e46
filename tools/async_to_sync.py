"""Generate the sync modules of esframework from their async sources.

The async module is the source: `_x_async.py` becomes `_x.py`, with `async`/`await` dropped
and `Async*` names, `*_async` modules and asyncio calls mapped to their sync twins. The
output is formatted with ruff, so it reads like hand-written code. Run it after editing a
source; `.ci/run` runs it with `--check`, which fails if a generated file is stale.

    python tools/async_to_sync.py          # regenerate
    python tools/async_to_sync.py --check  # verify
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SOURCES = (
    "esframework/_personal/_keys_async.py",
    "esframework/_personal/_keyring_async.py",
    "esframework/_store_async.py",
    "esframework/_repository_async.py",
    "esframework/_subscription_store_async.py",
    "esframework/_subscription_spec_async.py",
    "esframework/_subscription_worker_async.py",
    "esframework/_subscriptions_async.py",
    "esframework/_partitions_async.py",
    "esframework/_decisions/_service_async.py",
    "esframework/postgres/_migrations_async.py",
    "esframework/postgres/_coordination_async.py",
    "esframework/postgres/_shared_session_async.py",
    "esframework/postgres/_archive_async.py",
    "esframework/postgres/_keys_async.py",
    "esframework/postgres/_connections_async.py",
    "esframework/postgres/_subscriptions_async.py",
    "esframework/postgres/_store_async.py",
)

HEADER = (
    "# WARNING: generated from {source} by tools/async_to_sync.py: do not edit.\n"
    "# Edit the source, then run `python tools/async_to_sync.py`.\n"
)

RULES: tuple[tuple[str, str], ...] = (
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait\s+", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\basynccontextmanager\b", "contextmanager"),
    (r"\bAbstractAsyncContextManager\b", "AbstractContextManager"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\bAsyncGenerator\b", "Generator"),
    (r"\bAwaitable\[(\w+)\]", r"\1"),
    (r"\bAwaitable, ", ""),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\basyncio\.to_thread\(([\w.]+)\)", r"\1()"),  # sync code is on its own thread already
    (r"\basyncio\.Lock\b", "threading.Lock"),
    (r"^import asyncio$", "import threading\nimport time"),
    (r"\bAsync(?=[A-Z])", ""),
    (r"(?<=\w)_async\b", ""),
)


def generate(source: Path) -> str:
    text = source.read_text()
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    text = HEADER.format(source=source.name) + _strip_docstring_source_note(text)
    fixes = ["check", "--select", "I,F401,UP028,RUF022", "--fix", "--unsafe-fixes", "--quiet"]
    return _ruff(["format"], _ruff(fixes, text))


def _strip_docstring_source_note(text: str) -> str:
    # The sources say they are sources; the generated files say so in their header.
    return re.sub(r"\n\nThis module is the source of .*?\n(?=\"\"\")", "\n", text, flags=re.DOTALL)


def _ruff(arguments: list[str], text: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", "generated.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"ruff failed on generated code:\n{done.stderr}")
    return done.stdout


def target_of(source: Path) -> Path:
    return source.with_name(source.name.replace("_async.py", ".py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args()
    stale = []
    for name in SOURCES:
        source = ROOT / name
        target = target_of(source)
        text = generate(source)
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.relative_to(ROOT).as_posix())
        elif not target.exists() or target.read_text() != text:
            target.write_text(text)
            print(f"generated {target.relative_to(ROOT)}")
    if stale:
        print("stale generated files (run python tools/async_to_sync.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
