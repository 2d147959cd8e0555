"""Beacon's benchmark harness: `run.py` runs it; `cli` parses the options and runs the sections listed in
`sections` (one module each, each returning a dataclass that renders its own part of RESULTS.md), on top
of the shared helpers (processes, network, servers, sse_load, stats, machine, report)."""
