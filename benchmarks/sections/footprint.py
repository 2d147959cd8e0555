"""5b. Footprint: what installing and running Beacon costs: the binary's size, start to the Serving line,
and idle memory with one page open, next to nginx serving the same page and inotifywait on the folder."""
import os
import subprocess
import time
from dataclasses import dataclass

from ..common import log
from ..network import SSEClient, free_port, http_get
from ..options import Options
from ..processes import PROCS, mktemp, read_line, rss_kib, run as run_command, smaps_kib, with_children
from ..servers import Beacon, make_site, start_nginx
from ..stats import pct

IDLE_S = 30  # seconds of quiet, the page open, before the idle figure


@dataclass
class Memory:
    rss_kib: int
    anon_kib: int  # the process's own memory (smaps_rollup Anonymous)


@dataclass
class FootprintResult:
    size: int  # bytes, as built
    stripped: int  # bytes, stripped (as installed)
    start_ms: list[float]  # spawn -> the Serving line, sorted
    beacon: Memory  # 1 s after the page opened
    beacon_idle: Memory  # after IDLE_S more seconds with the page still open
    nginx: Memory  # master and workers
    nginx_processes: int
    inotifywait: Memory
    ldd: str  # what ldd printed for the binary

    def table_rows(self):
        return []

    def markdown(self):
        B, N, I = self.beacon, self.nginx, self.inotifywait
        toolchain = [line.strip() for line in self.ldd.splitlines() if "swift" in line.lower()]
        out = ["## 5b. Footprint\n"]
        out.append(f"The binary: {self.size / 2**20:.1f} MiB as built, {self.stripped / 2**20:.1f} MiB stripped (as "
                   "`make install` and the .deb ship it); libraries from the Swift toolchain in `ldd`: "
                   f"{', '.join(toolchain) if toolchain else 'none'}. Start to the `Serving` line, "
                   f"{len(self.start_ms)} starts: median {pct(self.start_ms, 50):.0f} ms "
                   f"({self.start_ms[0]:.0f}–{self.start_ms[-1]:.0f}).\n")
        out.append("Idle memory with one page open (its page fetched, its event stream held), next to nginx serving "
                   "the same page (master and workers) and `inotifywait -m -r` on the same folder. Anonymous is the "
                   "memory that is the process's own; the rest of RSS is clean pages of the executable and libraries, "
                   "shared with the page cache. Beacon gives back the clean pages of its executable at the "
                   "`Serving` line and again once it is quiet after doing something (the idle trim, every 10 s at "
                   "most), so its memory is shown right after the page opened and once idle.\n")
        out.append("| process | RSS KiB | anonymous KiB |")
        out.append("|---|---:|---:|")
        out.append(f"| beacon, 1 s after the page opened | {B.rss_kib:,} | {B.anon_kib:,} |")
        out.append(f"| beacon, {IDLE_S} s later (idle, the page still open) | {self.beacon_idle.rss_kib:,} | "
                   f"{self.beacon_idle.anon_kib:,} |")
        out.append(f"| nginx ({self.nginx_processes} processes) | {N.rss_kib:,} | {N.anon_kib:,} |")
        out.append(f"| inotifywait | {I.rss_kib:,} | {I.anon_kib:,} |\n")
        return out


def run(options: Options) -> FootprintResult:
    site = mktemp("beacon-bench-footprint-")
    make_site(site)
    stripped = os.path.join(mktemp("beacon-bench-strip-"), "beacon")
    run_command(["strip", "-o", stripped, options.beacon])
    starts = []
    for _ in range(3 if options.quick else 10):
        b = Beacon(options.beacon, site)
        starts.append(b.t_line - b.t_start)
        b.stop()
    PROCS.record(f"{options.beacon} serve SITE --port 0 --quiet   # GET /index.html, one SSE client; "
                 f"VmRSS after 1 s and after {IDLE_S} s more")
    b = Beacon(options.beacon, site)
    try:
        http_get(b.port, "/index.html")
        client = SSEClient(b.port, "/__beacon/events")
        client.wait_first_event(10)
        time.sleep(1.0)
        beacon = Memory(rss_kib=rss_kib(b.pid), anon_kib=smaps_kib(b.pid, "Anonymous"))
        time.sleep(IDLE_S)
        beacon_idle = Memory(rss_kib=rss_kib(b.pid), anon_kib=smaps_kib(b.pid, "Anonymous"))
        client.close()
    finally:
        b.stop()
    tmp = mktemp("beacon-bench-footprint-nginx-")
    port = free_port()
    n = start_nginx(site, port, tmp)
    try:
        http_get(port, "/index.html")
        time.sleep(0.5)
        pids = with_children(n.pid)
        nginx = Memory(rss_kib=sum(rss_kib(p) for p in pids), anon_kib=sum(smaps_kib(p, "Anonymous") for p in pids))
    finally:
        PROCS.stop(n)
    w = PROCS.start(["inotifywait", "-m", "-r", site], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        read_line(w.stderr, 10, "inotifywait's 'Watches established'")
        read_line(w.stderr, 10, "inotifywait's 'Watches established'")
        inotify = Memory(rss_kib=rss_kib(w.pid), anon_kib=smaps_kib(w.pid, "Anonymous"))
    finally:
        PROCS.stop(w)
    result = FootprintResult(size=os.path.getsize(options.beacon), stripped=os.path.getsize(stripped),
                             start_ms=sorted(1000 * x for x in starts), beacon=beacon, beacon_idle=beacon_idle, nginx=nginx,
                             nginx_processes=len(pids), inotifywait=inotify,
                             ldd=run_command(["ldd", options.beacon], check=False).stdout)
    log(f"footprint: {result.stripped / 2**20:.1f} MiB stripped, start {pct(sorted(starts), 50) * 1000:.0f} ms, "
        f"RSS {beacon.rss_kib:,} KiB (anonymous {beacon.anon_kib:,}), idle {beacon_idle.rss_kib:,} KiB; nginx {nginx.rss_kib:,}; "
        f"inotifywait {inotify.rss_kib:,}")
    return result
