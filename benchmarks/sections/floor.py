"""9. The floor for fan-out (issue 23): one publish to N streams of one process, Beacon next to a minimal C
epoll broadcaster (`benchmarks/sse_floor.c`, one and two writing threads) driven by the same load client and
the same publish request. Target: Beacon's publish → 100 % within 1.2× the two-thread floor, nothing lost."""
import os
import statistics
import subprocess
import time
from dataclasses import dataclass

from ..common import HERE, log
from ..network import free_port
from ..options import Options
from ..processes import PROCS, mktemp, read_line, run as run_command
from ..servers import Beacon, Publisher, beacon_cap_flag, make_site
from ..sse_load import build_load_client, run_load

TARGET_RATIO = 1.2  # Beacon ÷ the two-thread floor, at most
PATH = "/__beacon/events?channel=bench"


@dataclass
class FloorRun:
    target: str  # "beacon", "floor-1", "floor-2"
    n: int
    received: int
    lost: int
    t100_ms: float | str
    p50_ms: float | str


@dataclass
class FloorResult:
    runs: list[FloorRun]
    rounds: int

    def median(self, target, n):
        values = [r.t100_ms for r in self.runs if r.target == target and r.n == n]
        numbers = [v for v in values if isinstance(v, (int, float))]
        return statistics.median(numbers) if numbers and len(numbers) == len(values) else None

    def ratios(self):
        out = {}
        for n in sorted({r.n for r in self.runs}):
            b, f2 = self.median("beacon", n), self.median("floor-2", n)
            out[n] = b / f2 if b and f2 else None
        return out

    def table_rows(self):
        rows = []
        for n, ratio in self.ratios().items():
            figures = ", ".join(f"{t} {self.median(t, n)} ms" for t in ("floor-1", "floor-2", "beacon"))
            rows.append(("floor", f"publish → 100 % of {n:,} streams",
                         f"{figures}; beacon ÷ floor-2 {ratio:.2f}×" if ratio else figures))
        return rows

    def markdown(self):
        out = ["## 9. Fan-out against the floor (issue 23)\n"]
        out.append("One publish (`POST /__beacon/publish`, a CLOCK_MONOTONIC stamp as data) to N streams held by "
                   "`benchmarks/sse_load.c`; \"to 100 %\" is the time until the last stream had it. The floor, "
                   "`benchmarks/sse_floor.c`, answers the same requests and does nothing but one `write()` per "
                   f"stream from one or two threads. {self.rounds} rounds per target and N, medians.\n")
        out.append("| N | target | to 100 % ms (median) | rounds | lost |")
        out.append("|---:|---|---:|---|---:|")
        for n in sorted({r.n for r in self.runs}):
            for target in ("floor-1", "floor-2", "beacon"):
                runs = [r for r in self.runs if r.target == target and r.n == n]
                median = self.median(target, n)
                rounds = " / ".join(str(r.t100_ms) for r in runs)
                out.append(f"| {n:,} | {target} | {median if median is not None else 'n/a'} | {rounds} | "
                           f"{sum(r.lost for r in runs)} |")
        out.append("")
        for n, ratio in self.ratios().items():
            verdict = "met" if ratio is not None and ratio <= TARGET_RATIO else "not met"
            shown = f"{ratio:.2f}×" if ratio else "n/a"
            out.append(f"- N = {n:,}: Beacon ÷ two-thread floor = {shown} (target ≤ {TARGET_RATIO}×: {verdict})")
        out.append("")
        return out


def _one(exe, port, n):
    """One round on a server already listening on `port`: connect n streams, publish once, read the result."""
    def on_ready(ready):
        time.sleep(0.5)
        publisher = Publisher(port)
        try:
            publisher.publish("bench")
        finally:
            publisher.close()

    _, result = run_load(exe, port, PATH, n, "headers", on_ready, connect_timeout=180, wait=30, linger=5)
    return result


def run(options: Options) -> FloorResult:
    tmp = mktemp("beacon-bench-floor-")
    exe = build_load_client(tmp)
    floor = os.path.join(tmp, "sse_floor")
    run_command(["gcc", "-O2", "-o", floor, os.path.join(HERE, "sse_floor.c"), "-lpthread"], timeout=120)
    counts = (10_000,) if options.quick else (10_000, 19_000)
    rounds = 1 if options.quick else 3
    runs = []
    for n in counts:
        for threads in (1, 2):
            # A fresh floor per round: it learns that a stream is gone only when a write to it fails,
            # so a second round's streams came on top of the first's descriptors and ran out of them.
            for _ in range(rounds):
                port = free_port()
                p = PROCS.start([floor, "--port", str(port), "--threads", str(threads)], stdout=subprocess.PIPE)
                try:
                    read_line(p.stdout, 10, "sse_floor's LISTENING line")
                    result = _one(exe, port, n)
                    runs.append(FloorRun(f"floor-{threads}", n, result.received, result.lost, result.t100_ms,
                                         result.p50_ms))
                    log(f"floor: floor-{threads} n={n} to 100 % {result.t100_ms} ms, lost {result.lost}")
                finally:
                    PROCS.stop(p)
        site = mktemp("beacon-bench-floor-site-")
        make_site(site)
        b = Beacon(options.beacon, site, beacon_cap_flag(options.beacon))
        try:
            b.status()
            for _ in range(rounds):
                result = _one(exe, b.port, n)
                runs.append(FloorRun("beacon", n, result.received, result.lost, result.t100_ms, result.p50_ms))
                log(f"floor: beacon n={n} to 100 % {result.t100_ms} ms, lost {result.lost}")
        finally:
            b.stop()
    PROCS.record(f"gcc -O2 -o sse_floor benchmarks/sse_floor.c -lpthread; sse_floor --port P --threads 1|2; "
                 f"sse_load --port P -n N --path '{PATH}' --ready headers   # then one POST /__beacon/publish")
    return FloorResult(runs=runs, rounds=rounds)
