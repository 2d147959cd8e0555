#!/usr/bin/env python3
"""Runs Beacon's benchmarks (the `benchmarks` package, see README.md); `--help` lists the options."""
import os
import sys

# Run as a script, Python puts benchmarks/ itself first on sys.path; import the package from the
# repository root instead, so none of its modules shadows a top-level one.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
