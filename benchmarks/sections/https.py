"""10. HTTPS and HTTP/2 (issue 17): `h2load -c 16 -m 10` on the 1 KiB and the 100 KiB page, Beacon
(`serve --https`) next to nginx with `ssl http2` on the same certificate and key (the one Beacon's local
CA issued), in rounds that alternate the order; server CPU per request; and new TLS connections per second
(`openssl s_time -new`, two clients at once)."""
import os
import re
import statistics
import subprocess
from dataclasses import dataclass

from ..common import BenchError, log
from ..network import free_port
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, run as run_command, with_children
from ..servers import Beacon, make_site, nginx_conf, run_nginx

PAGES = [("1 KiB HTML", "/page1k.html"), ("100 KiB HTML", "/page100k.html")]
SERVERS = ("beacon", "nginx")
TARGET_RATIO = 1.0  # Beacon ÷ nginx req/s, at least


@dataclass
class H2Run:
    page: str
    server: str
    rps: float
    us_per_req: float | None
    succeeded: int
    failed: int
    errored: int
    protocol: str


@dataclass
class HttpsResult:
    duration_s: int
    rounds: int
    runs: list[H2Run]
    handshakes: dict[str, list[float]]  # server -> new connections/s per round
    workers: dict[str, str]

    def median(self, page, server, key="rps"):
        values = [getattr(r, key) for r in self.runs if r.page == page and r.server == server]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def ratio(self, page):
        b, n = self.median(page, "beacon"), self.median(page, "nginx")
        return b / n if b and n else None

    def table_rows(self):
        rows = []
        for page, _ in PAGES:
            for server in SERVERS:
                fig = f"{self.median(page, server) or 0:>10,.0f} req/s"
                cpu = self.median(page, server, "us_per_req")
                if cpu:
                    fig += f"  {cpu:6.1f} us CPU/req"
                if server == "beacon" and self.ratio(page):
                    fig += f"  {self.ratio(page):.2f}x nginx"
                rows.append(("https", f"{page} h2 {server}", fig))
        for server in SERVERS:
            if self.handshakes.get(server):
                rows.append(("https", f"TLS handshakes {server}",
                             f"{statistics.median(self.handshakes[server]):,.0f} new connections/s"))
        return rows

    def markdown(self):
        out = ["## 10. HTTPS and HTTP/2: Beacon vs nginx (issue 17)\n"]
        out.append("Both serve the same folder over TLS on 127.0.0.1 with the same certificate and key (P-256, issued "
                   "by Beacon's local CA on the first start): `beacon serve DIR --https --port 0 --quiet` and nginx "
                   "with `listen … ssl http2`, `ssl_protocols TLSv1.2 TLSv1.3`, otherwise the static section's "
                   "configuration. What ran each: " + "; ".join(f"{k}: {v}" for k, v in self.workers.items()) + ". "
                   f"Per page and server: `h2load -c 16 -m 10 -D {self.duration_s} --warm-up-time=1` (16 connections, "
                   f"10 streams each, ALPN h2); {self.rounds} round(s), the order alternating. CPU per request is the "
                   "server's own processes' user+system time over the run ÷ requests. Handshakes: two "
                   "`openssl s_time -connect … -new -time 5` at once (a full handshake per connection, no "
                   "resumption), connections summed.\n")
        out.append("| page | server | req/s (median) | rounds | CPU µs/req | failed/errored | protocol |")
        out.append("|---|---|---:|---|---:|---:|---|")
        for page, _ in PAGES:
            for server in SERVERS:
                runs = [r for r in self.runs if r.page == page and r.server == server]
                cpu = self.median(page, server, "us_per_req")
                out.append(f"| {page} | {server} | {self.median(page, server) or 0:,.0f} | "
                           f"{' / '.join(f'{r.rps:,.0f}' for r in runs)} | {cpu:.1f} | "
                           f"{sum(r.failed for r in runs)}/{sum(r.errored for r in runs)} | "
                           f"{', '.join(sorted({r.protocol for r in runs}))} |" if cpu else
                           f"| {page} | {server} | {self.median(page, server) or 0:,.0f} | — | — | — | — |")
        out.append("")
        out.append("| server | new TLS connections/s (median) | rounds |")
        out.append("|---|---:|---|")
        for server in SERVERS:
            values = self.handshakes.get(server) or []
            median = f"{statistics.median(values):,.0f}" if values else "n/a"
            out.append(f"| {server} | {median} | {' / '.join(f'{v:,.0f}' for v in values)} |")
        out.append("")
        for page, _ in PAGES:
            ratio = self.ratio(page)
            verdict = "met" if ratio is not None and ratio >= TARGET_RATIO else "not met"
            out.append(f"- {page}: Beacon ÷ nginx req/s over h2 = {f'{ratio:.2f}×' if ratio else 'n/a'} "
                       f"(target ≥ {TARGET_RATIO}×: {verdict})")
        out.append("")
        return out


def _h2load(port, path, duration):
    result = run_command(["h2load", "-c", "16", "-m", "10", "-D", str(duration), "--warm-up-time=1",
                          f"https://127.0.0.1:{port}{path}"], timeout=duration + 60, record=False, check=False)
    text = result.stdout + result.stderr
    finished = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text)
    counts = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                       text)
    protocol = re.search(r"Application protocol: (\S+)", text)
    if not (finished and counts):
        raise BenchError(f"https: h2load printed no result: {text[-600:]}")
    return float(finished.group(1)), [int(x) for x in counts.groups()], protocol.group(1) if protocol else "none"


def _handshakes(port, seconds=5):
    """New TLS connections per second from two `openssl s_time -new` clients at once."""
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 30)
        m = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        if m:
            total += int(m.group(1)) / max(float(m.group(2)), 1e-3)
    return total


def run(options: Options) -> HttpsResult:
    duration = 3 if options.quick else 10
    rounds = 1 if options.quick else 3
    site = mktemp("beacon-bench-https-site-")
    home = mktemp("beacon-bench-https-home-")
    ng_tmp = mktemp("beacon-bench-https-nginx-")
    for d in (site, ng_tmp):
        os.chmod(d, 0o755)
    make_site(site)
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = home
    b = Beacon(options.beacon, site, ["--https"], env=env)
    folder = os.path.join(home, ".local", "share", "beacon")
    cert, key = os.path.join(folder, "server.pem"), os.path.join(folder, "server-key.pem")
    ng_port = free_port()
    body = (f"        root {site};\n        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n")
    ng = run_nginx(nginx_conf(ng_tmp, ng_port, body, listen_extra=" ssl http2"), ng_port, ng_tmp)
    ports = {"beacon": b.port, "nginx": ng_port}
    pids = {"beacon": [b.pid], "nginx": with_children(ng.pid)}
    workers = {"nginx": f"{len(pids['nginx']) - 1} worker processes (+ master)", "beacon": "one process"}
    PROCS.record(f"h2load -c 16 -m 10 -D {duration} --warm-up-time=1 https://127.0.0.1:PORT/PAGE; "
                 "openssl s_time -connect 127.0.0.1:PORT -new -time 5   # two at once")
    runs, handshakes = [], {}
    for rnd in range(rounds):
        order = SERVERS if rnd % 2 == 0 else tuple(reversed(SERVERS))
        for page, path in PAGES:
            for server in order:
                cpu0 = cpu_seconds(pids[server])
                rps, (ok, failed, errored), protocol = _h2load(ports[server], path, duration)
                cpu = cpu_seconds(pids[server]) - cpu0
                total = ok + failed + errored
                runs.append(H2Run(page, server, rps, cpu / total * 1e6 if total else None, ok, failed, errored,
                                  protocol))
                log(f"https round {rnd + 1}/{rounds} {server:6s} {page:12s} {rps:>9,.0f} req/s  "
                    f"{runs[-1].us_per_req or 0:6.1f} µs CPU/req  ({protocol}, failed {failed}, errored {errored})")
        for server in order:
            rate = _handshakes(ports[server])
            handshakes.setdefault(server, []).append(rate)
            log(f"https round {rnd + 1}/{rounds} {server:6s} {rate:,.0f} new TLS connections/s")
        if b.proc.poll() is not None:
            raise BenchError(f"https: beacon exited ({b.proc.returncode}); log: {b.log_tail()}")
    PROCS.stop_all()
    return HttpsResult(duration_s=duration, rounds=rounds, runs=runs, handshakes=handshakes, workers=workers)
