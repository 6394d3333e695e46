"""The `esframework` console command, kept for `python -m esframework._cli`: see `.cli`."""

from __future__ import annotations

import sys

from esframework.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
