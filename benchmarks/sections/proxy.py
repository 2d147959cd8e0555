"""8. The proxy (issue 16): a small and a 100 KiB HTML page from one fast upstream (nginx serving the files),
directly, through `beacon serve --proxy` and through nginx's proxy_pass + sub_filter injecting the same script
tag: req/s, proxy CPU per request, and the latency each proxy adds, in rounds that alternate the order."""
import os
import statistics
from dataclasses import dataclass

from ..common import BenchError, log
from ..network import free_port, http_get
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, with_children
from ..servers import Beacon, make_site, start_nginx, start_nginx_proxy
from ..wrk import wrk

PAGES = [("1 KiB HTML", "/page1k.html"), ("100 KiB HTML", "/page100k.html")]
TARGETS = ("direct", "beacon", "nginx-proxy")
PROXIES = ("beacon", "nginx-proxy")
MARKER = b'<script src="/__beacon/client.js"'  # Beacon may add attributes (a CSP nonce) before '>'
TARGET_RPS_RATIO = 1.0  # Beacon ÷ nginx's proxy, at least
TARGET_ADDED_P99_MS = 1.0  # latency added over going direct, at p99, at most


@dataclass
class TargetRow:
    """One page on one target (direct, beacon, nginx-proxy), over the rounds: medians."""
    page: str
    target: str
    rps: float
    rps_min: float
    rps_max: float
    ratio: float | None  # req/s ÷ nginx-proxy's
    us_per_req: float | None  # CPU of the target's own processes per request (direct: the upstream)
    upstream_us_per_req: float | None  # the upstream's CPU per request while going through this target
    loaded_p50_ms: float  # wrk -t2 -c64 --latency
    loaded_p99_ms: float
    single_p50_ms: float  # wrk -t1 -c1 --latency: one connection, one request at a time
    single_p99_ms: float
    added_p50_ms: float | None  # single-connection latency over direct's, paired by round, median
    added_p99_ms: float | None
    loaded_added_p50_ms: float | None
    loaded_added_p99_ms: float | None
    bytes: int  # body size this target sent
    non2xx: int
    errors: str


@dataclass
class ProxyResult:
    duration_s: int
    single_duration_s: int
    rounds: int
    workers: dict[str, str]  # target -> what ran it (processes, threads)
    rows: list[TargetRow]
    paired_rps: dict[str, list[float | None]]  # page -> Beacon ÷ nginx-proxy req/s per round
    orders: list[str]  # the order of each round

    def _row(self, page, target):
        return next(r for r in self.rows if r.page == page and r.target == target)

    def verdicts(self):
        """(target text, verdict, figure) for each page: 'met', 'not met', or 'inconclusive' where the
        proxy's p99 came out below going direct by more than the target itself (noise from other processes
        on the shared cores then outweighs what is measured)."""
        def added(v):
            if v is None:
                return "n/a"
            if v < -TARGET_ADDED_P99_MS:
                return "inconclusive (direct's p99 was the noisier)"
            return "met" if v <= TARGET_ADDED_P99_MS else "not met"

        out = []
        for page, _ in PAGES:
            b = self._row(page, "beacon")
            out.append((f"{page}: req/s ≥ {TARGET_RPS_RATIO:.1f}× nginx's proxy",
                        "met" if b.ratio is not None and b.ratio >= TARGET_RPS_RATIO else "not met",
                        f"{b.ratio:.2f}×"))
            out.append((f"{page}: ≤ {TARGET_ADDED_P99_MS:.0f} ms added at p99 (one connection)",
                        added(b.added_p99_ms), f"{b.added_p99_ms:+.3f} ms"))
            out.append((f"{page}: ≤ {TARGET_ADDED_P99_MS:.0f} ms added at p99 (64 connections)",
                        added(b.loaded_added_p99_ms), f"{b.loaded_added_p99_ms:+.3f} ms"))
        return out

    def table_rows(self):
        rows = []
        for r in self.rows:
            fig = f"{r.rps:>10,.0f} req/s"
            if r.ratio is not None and r.target != "direct":
                fig += f"  {r.ratio:.2f}x nginx-proxy"
            if r.us_per_req:
                fig += f"  {r.us_per_req:6.1f} us CPU/req"
            fig += f"  1-conn p50/p99 {r.single_p50_ms:.3f}/{r.single_p99_ms:.3f} ms"
            if r.added_p99_ms is not None:
                fig += f" (+{r.added_p50_ms:.3f}/+{r.added_p99_ms:.3f})"
            rows.append(("proxy", f"{r.page} {r.target}", fig))
        return rows

    def markdown(self):
        def ms(v):
            return "—" if v is None else f"{v:+.3f}"

        def us(v):
            return "—" if not v else f"{v:.1f}"

        out = ["## 8. Proxy: Beacon vs nginx's proxy_pass + sub_filter (issue 16)\n"]
        out.append("One upstream, nginx serving a folder (`page1k.html`, 1,024 bytes, and `page100k.html`, 102,400 "
                   "bytes, both ending in `</body>`), and two proxies in front of it, all on 127.0.0.1 and all "
                   "running for the whole section: `beacon serve --proxy http://127.0.0.1:UPSTREAM --port 0 --quiet` "
                   "(no directory, cwd an empty temporary folder, which it watches) and nginx with `proxy_pass` to an "
                   "`upstream { keepalive 32; }` block, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, "
                   "`proxy_set_header Accept-Encoding \"\"`, `sub_filter '</body>' "
                   "'<script src=\"/__beacon/client.js\"></script></body>'`, `sub_filter_once on`. "
                   "Both nginx configurations are the static section's (`worker_processes auto`, `access_log off`, "
                   "`keepalive_requests 1000000`; the proxy's buffers are nginx's defaults). What ran each: "
                   + "; ".join(f"{k}: {v}" for k, v in self.workers.items()) + ". "
                   "Before measuring, each page was fetched once from each: the upstream's answer carries no script "
                   "tag, each proxy's exactly one.\n")
        out.append(f"Per page and target: `wrk -t2 -c64 -d1s` warm-up, then `wrk -t2 -c64 -d{self.duration_s}s "
                   f"--timeout 5s --latency` (req/s, and latency under that load), then `wrk -t1 -c1 "
                   f"-d{self.single_duration_s}s --latency` (one connection, one request at a time: the latency a "
                   f"request sees without queueing). {self.rounds} round(s); each round measures every page on the "
                   "three targets back to back, in an order that alternates between rounds ("
                   + "; ".join(f"round {i + 1}: {o}" for i, o in enumerate(self.orders))
                   + "). Medians over rounds; the latency added by a proxy is its percentile minus the upstream's "
                   "(direct) in the same round, median over rounds. CPU per request is user + system time of the "
                   "target's own processes (Beacon's process; the proxy nginx's master and workers; for direct, the "
                   "upstream nginx) over the loaded run ÷ requests completed; the upstream's CPU per request while "
                   "serving through each proxy is shown beside it. wrk, the proxies and the upstream share the "
                   "machine's 2 cores.\n")
        out.append("| page | target | req/s (median) | range | × nginx-proxy | CPU µs/req | upstream CPU µs/req | "
                   "1-conn p50 ms | 1-conn p99 ms | added p50 ms | added p99 ms | 64-conn p50 ms | 64-conn p99 ms | "
                   "added p50 ms (64) | added p99 ms (64) | body bytes | non-2xx | socket errors |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in self.rows:
            ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
            out.append(f"| {r.page} | {r.target} | {r.rps:,.0f} | {r.rps_min:,.0f}–{r.rps_max:,.0f} | {ratio} | "
                       f"{us(r.us_per_req)} | {us(r.upstream_us_per_req)} | {r.single_p50_ms:.3f} | "
                       f"{r.single_p99_ms:.3f} | {ms(r.added_p50_ms)} | {ms(r.added_p99_ms)} | "
                       f"{r.loaded_p50_ms:.3f} | {r.loaded_p99_ms:.3f} | {ms(r.loaded_added_p50_ms)} | "
                       f"{ms(r.loaded_added_p99_ms)} | {r.bytes:,} | {r.non2xx} | {r.errors or '—'} |")
        out.append("")
        out.append("Round by round, Beacon ÷ nginx-proxy req/s:\n")
        for page, ratios in self.paired_rps.items():
            out.append(f"- {page}: " + ", ".join(f"{x:.2f}" if x else "—" for x in ratios))
        out.append("")
        out.append(f"Targets (issue 16): Beacon ≥ {TARGET_RPS_RATIO:.1f}× nginx's proxy req/s; ≤ "
                   f"{TARGET_ADDED_P99_MS:.0f} ms added at p99 (judged on the one-connection latency, which is what "
                   "a proxy adds to a request; under 64 connections the figure is mostly queueing on 2 shared cores, "
                   "shown too):\n")
        for text, verdict, fig in self.verdicts():
            out.append(f"- {text}: {fig} — {'met' if verdict == 'met' else '**' + verdict + '**'}")
        out.append("")
        return out


def _injections(port, path, who):
    """Fetches path once: (body bytes, how many Beacon script tags it carries)."""
    code, _, body = http_get(port, path)
    if code != 200:
        raise BenchError(f"proxy: {who} answered {code} for {path}")
    return len(body), body.count(MARKER)


def _threads(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run(options: Options) -> ProxyResult:
    dur = 3 if options.quick else 10
    single_dur = 2 if options.quick else 5
    # Five: on this shared two-core machine one target's CPU a request moves by ±7 % between
    # rounds minutes apart, as much as the gap measured between the proxies; three rounds let one
    # bad round decide the median.
    rounds = 1 if options.quick else 5
    site = mktemp("beacon-bench-upstream-")
    os.chmod(site, 0o755)
    make_site(site)
    up_tmp = mktemp("beacon-bench-upstream-nginx-")
    px_tmp = mktemp("beacon-bench-proxy-nginx-")
    cwd = mktemp("beacon-bench-proxy-cwd-")  # Beacon watches its cwd when given no directory: keep it empty
    for d in (up_tmp, px_tmp):
        os.chmod(d, 0o755)
    PROCS.record(f"wrk -t2 -c64 -d1s URL   # warm-up, then: wrk -t2 -c64 -d{dur}s --timeout 5s --latency URL; "
                 f"then: wrk -t1 -c1 -d{single_dur}s --timeout 5s --latency URL")

    up_port = free_port()
    up_proc = start_nginx(site, up_port, up_tmp)
    b = Beacon(options.beacon, None, ["--proxy", f"http://127.0.0.1:{up_port}"], cwd=cwd)
    px_port = free_port()
    px_proc = start_nginx_proxy(up_port, px_port, px_tmp)
    ports = {"direct": up_port, "beacon": b.port, "nginx-proxy": px_port}
    up_pids = with_children(up_proc.pid)
    pids = {"direct": up_pids, "beacon": [b.pid], "nginx-proxy": with_children(px_proc.pid)}
    workers = {"upstream nginx": f"{len(up_pids) - 1} worker processes (+ master)",
               "nginx-proxy": f"{len(pids['nginx-proxy']) - 1} worker processes (+ master)",
               "beacon": f"one process, {_threads(b.pid)} threads"}

    sizes = {}
    for page, path in PAGES:
        for target in TARGETS:
            size, tags = _injections(ports[target], path, target)
            want = 0 if target == "direct" else 1
            if tags != want:
                log_tail = f"; beacon log: {b.log_tail()}" if target == "beacon" else ""
                raise BenchError(f"proxy: {target} sent {tags} '<script src=\"/__beacon/client.js\"' tag(s) in "
                                 f"{path}, expected {want}{log_tail}")
            sizes[(page, target)] = size
    log("proxy: injection checked (upstream 0 tags, beacon 1, nginx-proxy 1); "
        f"workers: {'; '.join(f'{k}: {v}' for k, v in workers.items())}")

    loaded, single, up_cpu = {}, {}, {}  # (page, target) -> [per round]
    orders = []
    for rnd in range(rounds):
        order = TARGETS if rnd % 2 == 0 else tuple(reversed(TARGETS))
        orders.append(", ".join(order))
        for page, path in PAGES:
            for target in order:
                port = ports[target]
                wrk(port, path, 1)  # warm-up
                cpu0, up0 = cpu_seconds(pids[target]), cpu_seconds(up_pids)
                res = wrk(port, path, dur, latency=True)
                cpu, upc = cpu_seconds(pids[target]) - cpu0, cpu_seconds(up_pids) - up0
                res.us_per_req = cpu / res.requests * 1e6 if res.requests else None
                loaded.setdefault((page, target), []).append(res)
                up_cpu.setdefault((page, target), []).append(upc / res.requests * 1e6 if res.requests else None)
                one = wrk(port, path, single_dur, threads=1, conns=1, latency=True)
                single.setdefault((page, target), []).append(one)
                log(f"proxy round {rnd + 1}/{rounds} {target:11s} {page:12s} {res.rps:>9,.0f} req/s  "
                    f"{res.us_per_req or 0:6.1f} µs CPU/req  64-conn p50/p99 {res.percentiles_ms[50]:.3f}/"
                    f"{res.percentiles_ms[99]:.3f} ms  1-conn p50/p99 {one.percentiles_ms[50]:.3f}/"
                    f"{one.percentiles_ms[99]:.3f} ms  (non-2xx {res.non2xx + one.non2xx}, errors "
                    f"'{res.errors or one.errors}')")
        if b.proc.poll() is not None:
            raise BenchError(f"proxy: beacon exited ({b.proc.returncode}); log: {b.log_tail()}")
    PROCS.stop_all()

    rows = []
    for page, _ in PAGES:
        by_target = {}
        for target in TARGETS:
            ls, ss = loaded[(page, target)], single[(page, target)]
            direct_l, direct_s = loaded[(page, "direct")], single[(page, "direct")]
            rps = sorted(r.rps for r in ls)

            def added(runs, base, p):
                if target == "direct":
                    return None
                return _median([r.percentiles_ms[p] - d.percentiles_ms[p] for r, d in zip(runs, base)])

            by_target[target] = TargetRow(
                page=page, target=target, rps=statistics.median(rps), rps_min=rps[0], rps_max=rps[-1], ratio=None,
                us_per_req=_median([r.us_per_req for r in ls]),
                upstream_us_per_req=None if target == "direct" else _median(up_cpu[(page, target)]),
                loaded_p50_ms=statistics.median(r.percentiles_ms[50] for r in ls),
                loaded_p99_ms=statistics.median(r.percentiles_ms[99] for r in ls),
                single_p50_ms=statistics.median(r.percentiles_ms[50] for r in ss),
                single_p99_ms=statistics.median(r.percentiles_ms[99] for r in ss),
                added_p50_ms=added(ss, direct_s, 50), added_p99_ms=added(ss, direct_s, 99),
                loaded_added_p50_ms=added(ls, direct_l, 50), loaded_added_p99_ms=added(ls, direct_l, 99),
                bytes=sizes[(page, target)], non2xx=sum(r.non2xx for r in ls + ss),
                errors="; ".join(r.errors for r in ls + ss if r.errors))
        ref = by_target["nginx-proxy"].rps
        for r in by_target.values():
            r.ratio = r.rps / ref if ref else None
        rows.extend(by_target.values())
    paired = {page: [bb.rps / nn.rps if nn.rps else None
                     for bb, nn in zip(loaded[(page, "beacon")], loaded[(page, "nginx-proxy")])]
              for page, _ in PAGES}
    return ProxyResult(duration_s=dur, single_duration_s=single_dur, rounds=rounds, workers=workers, rows=rows,
                       paired_rps=paired, orders=orders)
