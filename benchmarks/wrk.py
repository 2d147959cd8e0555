"""wrk, the HTTP load generator: one run against 127.0.0.1, its figures read from its output."""
import re
from dataclasses import dataclass

from .common import LOOPBACK, BenchError
from .processes import run as run_command

WRK_RE = re.compile(r"Requests/sec:\s+([\d.]+)")
PERCENTILE_RE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class WrkRun:
    rps: float
    non2xx: int
    errors: str
    latency_avg: str
    requests: int
    us_per_req: float | None = None  # the server's CPU per request over the run (filled in by the caller)
    percentiles_ms: dict[int, float] | None = None  # with latency=True: 50, 75, 90, 99 -> ms


def wrk(port, path, duration, threads=2, conns=64, latency=False):
    """`wrk -tT -cC -dDs --timeout 5s [--latency] http://127.0.0.1:PORT/PATH` (keep-alive)."""
    url = f"http://{LOOPBACK}:{port}{path}"
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
           *(["--latency"] if latency else []), url]
    r = run_command(cmd, timeout=duration + 60, record=False)
    m = WRK_RE.search(r.stdout)
    if not m:
        raise BenchError(f"cannot read wrk output: {r.stdout[-500:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    errors = re.search(r"Socket errors:(.*)", r.stdout)
    lat = re.search(r"Latency\s+([\d.]+\w+)", r.stdout)
    total = re.search(r"(\d+) requests in", r.stdout)
    pcts = None
    if latency:
        pcts = {int(p): float(v) * UNIT_MS[u] for p, v, u in PERCENTILE_RE.findall(r.stdout)}
        if 50 not in pcts or 99 not in pcts:
            raise BenchError(f"cannot read wrk's latency distribution: {r.stdout[-500:]}")
    return WrkRun(rps=float(m.group(1)), non2xx=int(non2xx.group(1)) if non2xx else 0,
                  errors=errors.group(1).strip() if errors else "", latency_avg=lat.group(1) if lat else "?",
                  requests=int(total.group(1)) if total else 0, percentiles_ms=pcts)
