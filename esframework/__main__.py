"""`python -m esframework`: the `esframework` console command (see `esframework.cli`)."""

from __future__ import annotations

import sys

from esframework.cli import main

if __name__ == "__main__":
    sys.exit(main())
