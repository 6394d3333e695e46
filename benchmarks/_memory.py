"""Peak memory of reading a long stream, measured in a fresh process.

`run.py --memory` starts this file as a child process, so the peak is not hidden by what the
other scenarios allocated before. RSS (not tracemalloc) is measured, so memory held by the
driver in C, such as a fully fetched result set, counts too.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
from pathlib import Path
from typing import Self

__all__ = ["PeakRSS"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """Measures how far the resident set grows above its level at `__enter__`.

    On Linux the kernel's high-water mark is reset on entry (`clear_refs` = 5), so several
    measurements can be taken in one process. Elsewhere the process's lifetime peak is used,
    which is only right for the first measurement.
    """

    def __init__(self) -> None:
        self._baseline_kb = 0
        self._peak_kb = 0

    def __enter__(self) -> Self:
        gc.collect()
        with contextlib.suppress(OSError):  # not Linux, or not allowed: lifetime peak
            _CLEAR_REFS.write_text("5")
        self._baseline_kb = _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF)[2]
        return self

    def __exit__(self, *_: object) -> None:
        self._peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF)[2]

    @property
    def growth_mb(self) -> float:
        return round(max(0, self._peak_kb - self._baseline_kb) / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--stream-id", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--read", required=True, help="load, history or read_all")
    args = parser.parse_args()
    from _esframework_side import measure_memory

    growth = measure_memory(args.dsn, args.schema, args.stream_id, args.events, args.read)
    print(json.dumps({f"{args.read}_mb": growth}))


if __name__ == "__main__":
    main()
