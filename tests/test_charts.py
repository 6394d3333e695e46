"""benchmarks/charts.py draws the performance page's charts from a results JSON.

matplotlib comes with the `dev` extra; without it this test fails (it is not skipped).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _charts(tmp_path: Path, *results: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "benchmarks/charts.py", *map(str, results), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return sorted(path.name for path in tmp_path.iterdir())


def test_a_write_path_run_gets_its_ratios_and_its_scaling_chart(tmp_path: Path) -> None:
    names = _charts(tmp_path, RESULTS / "2026-12-02-write-path.json")
    assert names == ["2026-12-02-write-path-ratios.svg", "2026-12-02-write-path-scaling.svg"]
    scaling = (tmp_path / "2026-12-02-write-path-scaling.svg").read_text()
    assert scaling.startswith("<?xml")
    # Text is kept as text: the figures of the JSON are on the chart.
    assert "esframework (1 writer: 178)" in scaling
    assert "1,220" in scaling  # 16 writers
    assert "3,094" in scaling  # raw at 16 writers
    ratios = (tmp_path / "2026-12-02-write-path-ratios.svg").read_text()
    for scenario in ("create", "concurrent16_flush", "unit_of_work"):
        assert f">{scenario}<" in ratios
    assert "6.74" in ratios  # concurrent16_flush against the peer


def test_a_run_without_the_write_path_gets_only_its_ratios(tmp_path: Path) -> None:
    names = _charts(tmp_path, RESULTS / "2026-11-26.json")
    assert names == ["2026-11-26-ratios.svg"]
    ratios = (tmp_path / "2026-11-26-ratios.svg").read_text()
    assert ">load_full<" in ratios
    assert "8.26" in ratios
    assert ">subscription_catchup<" not in ratios  # measured on esframework alone


def test_a_rerun_draws_the_same_bytes(tmp_path: Path) -> None:
    _charts(tmp_path / "a", RESULTS / "2026-12-02-write-path.json")
    _charts(tmp_path / "b", RESULTS / "2026-12-02-write-path.json")
    for name in ("2026-12-02-write-path-ratios.svg", "2026-12-02-write-path-scaling.svg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
