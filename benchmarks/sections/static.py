"""1. Static files: wrk on three files, Beacon next to nginx and python-livereload, req/s and server CPU
per request, in rounds that measure the three servers back to back."""
import os
import statistics
from dataclasses import dataclass

from ..common import BenchError, log
from ..wrk import wrk
from ..network import free_port, http_get
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, with_children
from ..servers import Beacon, make_site, start_livereload, start_nginx

FILES = [("1 KiB HTML", "/page1k.html"), ("100 KiB HTML", "/page100k.html"), ("1 MiB binary", "/blob1m.bin")]
SERVERS = ("beacon", "nginx", "livereload")


@dataclass
class StaticRow:
    """One file on one server, over the rounds."""
    file: str
    server: str
    rps: float  # median
    rps_min: float
    rps_max: float
    ratio: float | None  # req/s ÷ nginx's
    us_per_req: float | None  # median server CPU per request
    cpu_ratio: float | None  # CPU per request ÷ nginx's
    bytes: int  # body size this server sent
    non2xx: int
    errors: str
    latency_avg: str  # wrk's mean latency in the median round


@dataclass
class PairedRatios:
    """Beacon ÷ nginx in each round (None where a figure is missing)."""
    rps: list[float | None]
    cpu: list[float | None]


@dataclass
class StaticResult:
    duration_s: int
    rounds: int
    rows: list[StaticRow]
    paired: dict[str, PairedRatios]  # file label -> ratios

    def table_rows(self):
        return [("static", f"{r.file} {r.server}",
                 f"{r.rps:>10,.0f} req/s  {r.ratio:.2f}x nginx"
                 + (f"  {r.us_per_req:6.1f} us CPU/req ({r.cpu_ratio:.2f}x nginx)" if r.us_per_req and r.cpu_ratio
                    else "")
                 + (f"  non-2xx {r.non2xx}" if r.non2xx else ""))
                for r in self.rows]

    def markdown(self):
        out = ["## 1. Static files\n"]
        out.append(f"`wrk -t2 -c64 -d{self.duration_s}s` (keep-alive) after a 1 s warm-up, per file and server; "
                   f"{self.rounds} round(s), each measuring every file on the three servers back to back (all three "
                   "running), median req/s and the range over rounds. "
                   "Beacon injects its client script into HTML, so its HTML bodies are slightly larger "
                   "(python-livereload injects its own script too); nginx serves them byte for byte with sendfile. "
                   "Server CPU per request is the server's user + system CPU time (all its processes: nginx's "
                   "workers too) over the wrk run divided by the requests wrk completed, median over rounds: "
                   "the steadier figure here, where wrk competes with the server for the same 2 cores (a server "
                   "that needs less CPU per request leaves more to the load generator).\n")
        out.append("| file | server | req/s (median) | range | × nginx | server CPU µs/request | CPU × nginx | body bytes | mean latency | non-2xx | socket errors |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in self.rows:
            cpu = f"{r.us_per_req:.1f}" if r.us_per_req else "—"
            cpu_ratio = f"{r.cpu_ratio:.2f}" if r.cpu_ratio else "—"
            out.append(f"| {r.file} | {r.server} | {r.rps:,.0f} | {r.rps_min:,.0f}–{r.rps_max:,.0f} | "
                       f"{r.ratio:.2f} | {cpu} | {cpu_ratio} | {r.bytes:,} | "
                       f"{r.latency_avg} | {r.non2xx} | {r.errors or '—'} |")
        if self.paired:
            out.append("")
            out.append("Round by round (each round's three servers measured back to back, so load from outside "
                       "shifts a round's figures alike), Beacon ÷ nginx:\n")

            def ratios(xs):
                return ", ".join(f"{x:.2f}" if x else "—" for x in xs)

            for label, pr in self.paired.items():
                out.append(f"- {label}: req/s {ratios(pr.rps)}; CPU per request {ratios(pr.cpu)}")
        out.append("")
        return out


def _over_rounds(label, server, runs, body_bytes):
    """The median round's figures (ratios to nginx are filled in once nginx's row exists)."""
    rps = sorted(r.rps for r in runs)
    cpus = [r.us_per_req for r in runs if r.us_per_req]
    return StaticRow(file=label, server=server, rps=statistics.median(rps), rps_min=rps[0], rps_max=rps[-1],
                     ratio=None, us_per_req=statistics.median(cpus) if cpus else None, cpu_ratio=None,
                     bytes=body_bytes, non2xx=sum(r.non2xx for r in runs),
                     errors="; ".join(r.errors for r in runs if r.errors),
                     latency_avg=sorted(runs, key=lambda r: r.rps)[len(runs) // 2].latency_avg)


def run(options: Options) -> StaticResult:
    dur = 3 if options.quick else 10
    rounds = 1 if options.quick else 3
    site = mktemp("beacon-bench-site-")
    os.chmod(site, 0o755)
    make_site(site)
    tmp = mktemp("beacon-bench-static-")
    os.chmod(tmp, 0o755)
    sizes = {}  # (server, file label) -> body bytes
    PROCS.record(f"wrk -t2 -c64 -d1s URL   # warm-up, then: wrk -t2 -c64 -d{dur}s --timeout 5s URL")

    # All three run at once (idle while not measured), and each file is measured on the three
    # servers back to back, so background load on the shared machine hits them alike.
    b = Beacon(options.beacon, site)
    ng_port = free_port()
    ng_proc = start_nginx(site, ng_port, tmp)
    lr_port = free_port()
    lr_proc = start_livereload(site, lr_port, tmp)
    servers = [("beacon", b.port), ("nginx", ng_port), ("livereload", lr_port)]
    # Server CPU per request: steadier than req/s here, where wrk takes its share of the same 2 cores.
    server_pids = {"beacon": [b.pid], "nginx": with_children(ng_proc.pid), "livereload": [lr_proc.pid]}
    runs = {}  # (server, file label) -> [WrkRun per round]
    for rnd in range(rounds):
        for label, path in FILES:
            for server, port in servers:
                if rnd == 0:
                    code, headers, body = http_get(port, path)
                    if code != 200:
                        raise BenchError(f"{server} answered {code} for {path}")
                    sizes[(server, label)] = len(body)
                wrk(port, path, 1)  # warm-up
                cpu0 = cpu_seconds(server_pids[server])
                res = wrk(port, path, dur)
                cpu = cpu_seconds(server_pids[server]) - cpu0
                res.us_per_req = cpu / res.requests * 1e6 if res.requests and server_pids[server] else None
                runs.setdefault((server, label), []).append(res)
                log(f"static round {rnd + 1}/{rounds} {server:10s} {label:13s} {res.rps:>10,.0f} req/s  "
                    f"{res.us_per_req or 0:6.1f} µs CPU/req  "
                    f"(body {sizes[(server, label)]:,} B, non-2xx {res.non2xx}, errors '{res.errors}')")
    PROCS.stop_all()

    rows = []
    for label, _ in FILES:
        row = {server: _over_rounds(label, server, runs[(server, label)], sizes[(server, label)]) for server in SERVERS}
        ref = row["nginx"]
        for r in row.values():
            r.ratio = r.rps / ref.rps if ref.rps else None
            r.cpu_ratio = r.us_per_req / ref.us_per_req if r.us_per_req and ref.us_per_req else None
        rows.extend(row.values())
    # Each round measures the servers back to back, so a round's ratio is the paired comparison:
    # background load on the shared machine shifts both figures of a round alike.
    paired = {}
    for label, _ in FILES:
        pairs = list(zip(runs[("beacon", label)], runs[("nginx", label)]))
        paired[label] = PairedRatios(
            rps=[b.rps / n.rps if n.rps else None for b, n in pairs],
            cpu=[b.us_per_req / n.us_per_req if b.us_per_req and n.us_per_req else None for b, n in pairs])
    return StaticResult(duration_s=dur, rounds=rounds, rows=rows, paired=paired)
