"""9. The floor for fan-out (issue 23): one publish to N streams of one process, Beacon next to a minimal C
epoll broadcaster (`benchmarks/sse_floor.c`, one and two writing threads) driven by the same load client and
the same publish requests. Each session holds N streams and sends PUBLISHES publishes one after another (each
once the last reached every stream); one publish moves by 10-20 % from round to round, so the figure is the
median over every publish of every session. Target: Beacon's publish → 100 % within 1.2× the two-thread
floor, nothing lost."""
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field

from ..common import HERE, log
from ..network import free_port
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, read_line, run as run_command
from ..servers import Beacon, Publisher, beacon_cap_flag, make_site
from ..sse_load import Delivery, Ready, build_load_client, read_report, source_count

TARGET_RATIO = 1.2  # Beacon ÷ the two-thread floor, at most
PATH = "/__beacon/events?channel=bench"
TARGETS = ("floor-1", "floor-2", "beacon")


@dataclass
class FloorRun:
    """One session: N streams held by one load client, publishes one after another."""
    target: str  # "beacon", "floor-1", "floor-2"
    n: int
    t100_ms: list = field(default_factory=list)  # per publish (a number, or "NA")
    answer_ms: list = field(default_factory=list)  # per publish: POST → its 202
    lost: int = 0
    cpu_ms_per_publish: float | None = None


@dataclass
class FloorResult:
    runs: list[FloorRun]
    sessions: int
    publishes: int

    def _all(self, target, n, attr):
        return [v for r in self.runs if r.target == target and r.n == n for v in getattr(r, attr)]

    def median(self, target, n):
        values = self._all(target, n, "t100_ms")
        numbers = [v for v in values if isinstance(v, (int, float))]
        return round(statistics.median(numbers), 1) if numbers and len(numbers) == len(values) else None

    def answer_median(self, target, n):
        values = self._all(target, n, "answer_ms")
        return round(statistics.median(values), 2) if values else None

    def ratios(self):
        out = {}
        for n in sorted({r.n for r in self.runs}):
            b, f2 = self.median("beacon", n), self.median("floor-2", n)
            out[n] = b / f2 if b and f2 else None
        return out

    def table_rows(self):
        rows = []
        for n, ratio in self.ratios().items():
            figures = ", ".join(f"{t} {self.median(t, n)} ms" for t in TARGETS)
            rows.append(("floor", f"publish → 100 % of {n:,} streams",
                         f"{figures}; beacon ÷ floor-2 {ratio:.2f}×" if ratio else figures))
        return rows

    def markdown(self):
        out = ["## 9. Fan-out against the floor (issue 23)\n"]
        out.append("Publishes (`POST /__beacon/publish`, a CLOCK_MONOTONIC stamp as data) to N streams held by "
                   "`benchmarks/sse_load.c`; \"to 100 %\" is the time until the last stream had one. The floor, "
                   "`benchmarks/sse_floor.c`, answers the same requests and does nothing but one `write()` per "
                   f"stream from one or two threads. {self.sessions} sessions per target and N, taken in turn; each "
                   f"holds the N streams and sends {self.publishes} publishes one after another (each once the last "
                   "reached every stream). Medians over every publish; per session in the next column; the "
                   "server's CPU time (user + system, from /proc) per publish; the publish's own answer.\n")
        out.append("| N | target | to 100 % ms (median) | per session | CPU ms per publish | publish → 202 ms | lost |")
        out.append("|---:|---|---:|---|---|---:|---:|")
        for n in sorted({r.n for r in self.runs}):
            for target in TARGETS:
                runs = [r for r in self.runs if r.target == target and r.n == n]
                median = self.median(target, n)
                sessions = " / ".join(_median_text(r.t100_ms) for r in runs)
                cpu = " / ".join(f"{r.cpu_ms_per_publish:.0f}" if r.cpu_ms_per_publish is not None else "n/a"
                                 for r in runs)
                out.append(f"| {n:,} | {target} | {median if median is not None else 'n/a'} | {sessions} | {cpu} | "
                           f"{self.answer_median(target, n)} | {sum(r.lost for r in runs)} |")
        out.append("")
        for n, ratio in self.ratios().items():
            verdict = "met" if ratio is not None and ratio <= TARGET_RATIO else "not met"
            shown = f"{ratio:.2f}×" if ratio else "n/a"
            out.append(f"- N = {n:,}: Beacon ÷ two-thread floor = {shown} (target ≤ {TARGET_RATIO}×: {verdict})")
        out.append("")
        return out


def _median_text(values):
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return "n/a"
    text = f"{statistics.median(numbers):.1f}"
    return text if len(numbers) == len(values) else f"{text} ({len(values) - len(numbers)} NA)"


def _session(exe, target, port, n, publishes, pids):
    """Holds n streams on `port` and sends `publishes` publishes one after another."""
    cmd = [exe, "--port", port, "-n", n, "--path", PATH, "--ready", "headers", "--src-count", source_count(n),
           "--connect-timeout", 180, "--wait", 30, "--linger", 5, "--rounds", publishes]
    run = FloorRun(target, n)
    p = PROCS.start([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    publisher = Publisher(port)
    try:
        read_line(p.stdout, 10, "sse_load's LIMIT line")
        read_report(p, Ready, 210, "sse_load's READY line")
        time.sleep(0.5)
        cpu0 = cpu_seconds(pids)
        for _ in range(publishes):
            run.answer_ms.append(publisher.publish("bench")[3])
            delivery = read_report(p, Delivery, 70, "sse_load's RESULT line")
            run.t100_ms.append(delivery.t100_ms)
            run.lost += delivery.lost
            time.sleep(0.1)
        run.cpu_ms_per_publish = (cpu_seconds(pids) - cpu0) / publishes * 1000
        p.wait(30)
    finally:
        publisher.close()
        PROCS.stop(p)
    return run


def run(options: Options) -> FloorResult:
    tmp = mktemp("beacon-bench-floor-")
    exe = build_load_client(tmp)
    floor = os.path.join(tmp, "sse_floor")
    run_command(["gcc", "-O2", "-o", floor, os.path.join(HERE, "sse_floor.c"), "-lpthread"], timeout=120)
    counts = (10_000,) if options.quick else (10_000, 19_000)
    sessions, publishes = (1, 5) if options.quick else (3, 15)
    site = mktemp("beacon-bench-floor-site-")
    make_site(site)
    runs = []
    for n in counts:
        for session in range(sessions):
            # Taken in turn, so a slow stretch of the machine falls on every target alike. A fresh floor per
            # session: it learns that a stream is gone only when a write to it fails.
            for target in (TARGETS if session % 2 == 0 else tuple(reversed(TARGETS))):
                if target == "beacon":
                    b = Beacon(options.beacon, site, beacon_cap_flag(options.beacon))
                    try:
                        b.status()
                        result = _session(exe, target, b.port, n, publishes, [b.pid])
                    finally:
                        b.stop()
                else:
                    port = free_port()
                    threads = target.split("-")[1]
                    p = PROCS.start([floor, "--port", str(port), "--threads", threads], stdout=subprocess.PIPE)
                    try:
                        read_line(p.stdout, 10, "sse_floor's LISTENING line")
                        result = _session(exe, target, port, n, publishes, [p.pid])
                    finally:
                        PROCS.stop(p)
                runs.append(result)
                log(f"floor: {target} n={n} to 100 % median {_median_text(result.t100_ms)} ms, "
                    f"202 median {statistics.median(result.answer_ms):.2f} ms, lost {result.lost}")
    PROCS.record(f"gcc -O2 -o sse_floor benchmarks/sse_floor.c -lpthread; sse_floor --port P --threads 1|2; "
                 f"sse_load --port P -n N --path '{PATH}' --ready headers --rounds {publishes}   "
                 f"# then {publishes} POST /__beacon/publish, each after the last reached every stream")
    return FloorResult(runs=runs, sessions=sessions, publishes=publishes)
