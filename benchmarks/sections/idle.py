"""5. Idle cost: Beacon's CPU time with 10 SSE clients connected and nothing changing."""
import select
import time
from dataclasses import dataclass

from ..common import log
from ..network import SSEClient
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, rss_kib
from ..servers import Beacon, make_site


@dataclass
class IdleResult:
    duration_s: float
    clients: int
    cpu_s: float  # utime + stime over the duration
    cpu_pct: float  # of one core
    heartbeats: int  # heartbeat comments received, all clients
    closed: int  # streams the server closed meanwhile
    rss0_kib: int
    rss1_kib: int
    status_clients: int | None
    hellos: int  # streams that got their hello before the measurement

    def table_rows(self):
        return [("idle", f"beacon, {self.clients} SSE clients, {self.duration_s:.0f} s",
                 f"{self.cpu_s:.3f} CPU s ({self.cpu_pct:.3f} % of a core), {self.heartbeats} heartbeats")]

    def markdown(self):
        out = ["## 5. Idle cost\n"]
        out.append(f"Beacon with the default heartbeat (15 s), {self.clients} SSE clients connected and nothing "
                   f"changing, for {self.duration_s:.1f} s: utime+stime from `/proc/PID/stat`.\n")
        out.append("| CPU seconds | % of one core | heartbeat comments received (all clients) | streams closed | "
                   "RSS KiB before → after | status clients |")
        out.append("|---:|---:|---:|---:|---|---:|")
        out.append(f"| {self.cpu_s:.3f} | {self.cpu_pct:.3f} | {self.heartbeats} | {self.closed} | "
                   f"{self.rss0_kib:,} → {self.rss1_kib:,} | {self.status_clients} |\n")
        out.append(f"- {self.hellos} of {self.clients} streams got their `hello` before the measurement started; "
                   "CPU time is counted in clock ticks (10 ms each).\n")
        return out


def run(options: Options) -> IdleResult:
    dur = 10 if options.quick else 60
    nclients = 10
    site = mktemp("beacon-bench-idle-")
    make_site(site)
    PROCS.record(f"{options.beacon} serve SITE --port 0 --quiet   # {nclients} clients on /__beacon/events, "
                 f"utime+stime from /proc/PID/stat over {dur} s")
    b = Beacon(options.beacon, site)
    clients = []
    try:
        for _ in range(nclients):
            clients.append(SSEClient(b.port, "/__beacon/events"))
        deadline = time.monotonic() + 10
        for c in clients:  # each stream's hello, within 10 s in all
            c.wait_first_event(deadline - time.monotonic())
        hellos = sum(1 for c in clients if not c.events.empty())
        time.sleep(1.0)
        for c in clients:  # drain what came meanwhile (bounded: at most 100 reads per client)
            for _ in range(100):
                if not select.select([c.sock], [], [], 0)[0] or not c.pump(0):
                    break
        comments0 = sum(c.comments for c in clients)
        cpu0, t0 = cpu_seconds([b.pid]), time.monotonic()
        rss0 = rss_kib(b.pid)
        socks = {c.sock: c for c in clients}
        while time.monotonic() - t0 < dur:
            r, _, _ = select.select(list(socks), [], [], min(1.0, max(0.0, dur - (time.monotonic() - t0))))
            for s in r:
                if not socks[s].pump(0):
                    del socks[s]
            if not socks:
                break
        cpu1, t1 = cpu_seconds([b.pid]), time.monotonic()
        rss1 = rss_kib(b.pid)
        heartbeats = sum(c.comments for c in clients) - comments0
        closed = sum(1 for c in clients if c.closed)
        status = b.status()
    finally:
        for c in clients:
            c.close()
        b.stop()
    cpu = cpu1 - cpu0
    log(f"idle: {cpu:.3f} CPU s over {t1 - t0:.1f} s ({100 * cpu / (t1 - t0):.3f} % of a core), "
        f"{heartbeats} heartbeat comments received, {closed} streams closed")
    return IdleResult(duration_s=t1 - t0, clients=nclients, cpu_s=cpu, cpu_pct=100 * cpu / (t1 - t0),
                      heartbeats=heartbeats, closed=closed, rss0_kib=rss0, rss1_kib=rss1,
                      status_clients=status.get("clients"), hellos=hellos)
