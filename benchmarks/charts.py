"""Draw the performance page's charts from the benchmark's JSON (`run.py --json`).

    python benchmarks/charts.py                      # the committed results, into docs/images
    python benchmarks/charts.py results.json --out /tmp/charts

For each results file: `<name>-ratios.svg`, esframework's rate divided by the peer's and by
raw psycopg's, per scenario; and, when the file has the write path's flushed
`concurrent{1,4,16}_flush` scenarios, `<name>-scaling.svg`, events/s against the number of
writers for the three sides. Needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_INPUTS = (RESULTS / "2026-11-26.json", RESULTS / "2026-12-02-write-path.json")
SIDES = ("esframework", "eventsourcing", "raw")
COLOURS = {"esframework": "#1f77b4", "eventsourcing": "#ff7f0e", "raw": "#7f7f7f"}
WRITERS = (1, 4, 16)
_BELOW = {"esframework": -12}  # its labels under its line: raw's are close above

# The same bytes for the same figures: no date in the file, fixed ids for its elements.
mpl.rcParams["svg.hashsalt"] = "esframework"
mpl.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, selectable labels
_SAVE: dict[str, Any] = {"metadata": {"Date": None}, "bbox_inches": "tight"}


def draw(results: Path, out: Path) -> list[Path]:
    """Draw the charts of one results file into `out`; return the files written."""
    data = json.loads(results.read_text())
    out.mkdir(parents=True, exist_ok=True)
    written = [_ratios(data, out / f"{results.stem}-ratios.svg", results.name)]
    if all(f"concurrent{n}_flush" in data.get("scenarios", {}) for n in WRITERS):
        written.append(_scaling(data, out / f"{results.stem}-scaling.svg", results.name))
    return written


def _ratios(data: dict[str, Any], path: Path, source: str) -> Path:
    ratios = data.get("ratios", {})
    # Only the scenarios measured on both other sides: the others have no ratio to show.
    names = [
        name
        for name, pair in ratios.items()
        if pair.get("esframework/eventsourcing") is not None
        and pair.get("esframework/raw") is not None
    ]
    if not names:
        msg = f"{source}: no scenario with both ratios"
        raise SystemExit(msg)
    names.reverse()  # matplotlib draws the first bar at the bottom; read top-down
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    height = 0.4
    rows = range(len(names))
    peer = [ratios[n]["esframework/eventsourcing"] for n in names]
    raw = [ratios[n]["esframework/raw"] for n in names]
    ax.barh([r + height / 2 for r in rows], peer, height, label="vs eventsourcing", color="#1f77b4")
    ax.barh([r - height / 2 for r in rows], raw, height, label="vs raw psycopg", color="#7f7f7f")
    for r, value in zip(rows, peer, strict=True):
        ax.text(value, r + height / 2, f" {value:.2f}", va="center", fontsize=8)
    for r, value in zip(rows, raw, strict=True):
        ax.text(value, r - height / 2, f" {value:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(rows), names)
    ax.set_xlabel("esframework's rate / the other's (higher is better; 1 = as fast)")
    ax.set_title(f"esframework against its peer and raw psycopg ({source})", fontsize=10)
    ax.set_xlim(0, max(peer + raw) * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return path


def _scaling(data: dict[str, Any], path: Path, source: str) -> Path:
    scenarios = data["scenarios"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for side in SIDES:
        rates = [scenarios[f"concurrent{n}_flush"][side] for n in WRITERS]
        if any(rate is None for rate in rates):
            continue
        # One writer's rates are too close together to label on the chart: in the legend.
        label = f"{side} (1 writer: {rates[0]:,.0f})"
        ax.plot(WRITERS, rates, marker="o", label=label, color=COLOURS[side])
        for n, rate in zip(WRITERS[1:], rates[1:], strict=True):
            ax.annotate(
                f"{rate:,.0f}",
                (n, rate),
                textcoords="offset points",
                xytext=(5, _BELOW.get(side, 4)),
                fontsize=8,
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(WRITERS), [str(n) for n in WRITERS])
    ax.minorticks_off()
    ax.set_xlabel("writer processes")
    ax.set_ylabel("events/s (higher is better)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Write path with a 4 ms commit flush ({source})", fontsize=10)
    ax.grid(axis="y", linewidth=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results", nargs="*", type=Path, default=list(DEFAULT_INPUTS), help="run.py --json files"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    for results in args.results:
        for path in draw(results, args.out):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
