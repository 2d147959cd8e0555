"""11. Metrics on vs off (issue 19): the same Beacon twice, with `/__beacon/metrics` (the default) and with
`--no-metrics`, side by side in alternating rounds: server CPU per static request (wrk on the 1 KiB page) and
per publish (a keep-alive publisher with one stream listening). Target: the difference within the noise,
taken as the spread of the off rounds."""
import statistics
from dataclasses import dataclass

from ..common import log
from ..network import SSEClient
from ..options import Options
from ..processes import cpu_seconds, mktemp, PROCS
from ..servers import Beacon, Publisher, make_site
from ..wrk import wrk

VARIANTS = ("on", "off")


@dataclass
class MetricsResult:
    rounds: int
    duration_s: int
    publishes: int
    static_us: dict[str, list[float]]  # variant -> CPU µs per static request, per round
    publish_us: dict[str, list[float]]  # variant -> CPU µs per publish, per round
    static_rps: dict[str, list[float]]

    def _figure(self, values):
        return statistics.median(values) if values else None

    def verdicts(self):
        out = []
        for what, table in (("static request", self.static_us), ("publish", self.publish_us)):
            on, off = self._figure(table["on"]), self._figure(table["off"])
            noise = (max(table["off"]) - min(table["off"])) if len(table["off"]) > 1 else None
            diff = on - off if on is not None and off is not None else None
            if diff is None:
                verdict = "n/a"
            elif noise is None:
                verdict = "one round: no noise figure"
            else:
                verdict = "within noise" if abs(diff) <= max(noise, 0.05 * off) else "above noise"
            out.append((what, on, off, diff, noise, verdict))
        return out

    def table_rows(self):
        return [("metrics", f"CPU per {what}", f"on {on:.1f} µs, off {off:.1f} µs ({diff:+.1f}; {verdict})")
                for what, on, off, diff, _, verdict in self.verdicts() if on is not None and off is not None]

    def markdown(self):
        out = ["## 11. Metrics on vs off (issue 19)\n"]
        out.append("Two `beacon serve DIR --port 0 --quiet` on the same folder, one with metrics (the default: every "
                   "answer counted by status class, every publish counted and timed) and one with `--no-metrics`. "
                   f"Per round and variant: `wrk -t2 -c64 -d{self.duration_s}s` on `/page1k.html` after a 1 s "
                   f"warm-up (server CPU ÷ requests), then {self.publishes:,} publishes on one keep-alive "
                   "connection with one stream listening (server CPU ÷ publishes). "
                   f"{self.rounds} rounds, the order alternating; medians, and the off rounds' spread as the noise.\n")
        out.append("| figure | metrics on | metrics off | on − off | noise (off max − min) | verdict |")
        out.append("|---|---:|---:|---:|---:|---|")
        for what, on, off, diff, noise, verdict in self.verdicts():
            out.append(f"| CPU µs per {what} | {on:.2f} | {off:.2f} | {diff:+.2f} | "
                       f"{'—' if noise is None else f'{noise:.2f}'} | {verdict} |")
        out.append("")
        out.append("Rounds (on / off): static µs " + "; ".join(
            f"{a:.1f}/{b:.1f}" for a, b in zip(self.static_us["on"], self.static_us["off"]))
            + "; publish µs " + "; ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(self.publish_us["on"],
                                                                              self.publish_us["off"])) + ".\n")
        return out


def run(options: Options) -> MetricsResult:
    rounds = 2 if options.quick else 5
    duration = 3 if options.quick else 5
    publishes = 1000 if options.quick else 3000
    site = mktemp("beacon-bench-metrics-site-")
    make_site(site)
    servers = {"on": Beacon(options.beacon, site), "off": Beacon(options.beacon, site, ["--no-metrics"])}
    static_us = {v: [] for v in VARIANTS}
    publish_us = {v: [] for v in VARIANTS}
    static_rps = {v: [] for v in VARIANTS}
    PROCS.record(f"wrk -t2 -c64 -d{duration}s http://127.0.0.1:PORT/page1k.html; {publishes} × POST /__beacon/publish")
    for rnd in range(rounds):
        order = VARIANTS if rnd % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            b = servers[variant]
            wrk(b.port, "/page1k.html", 1)
            cpu0 = cpu_seconds([b.pid])
            res = wrk(b.port, "/page1k.html", duration)
            static_us[variant].append((cpu_seconds([b.pid]) - cpu0) / res.requests * 1e6)
            static_rps[variant].append(res.rps)
            listener = SSEClient(b.port, "/__beacon/events?channel=bench")
            publisher = Publisher(b.port)
            try:
                cpu0 = cpu_seconds([b.pid])
                for _ in range(publishes):
                    publisher.publish("bench", data="x")
                publish_us[variant].append((cpu_seconds([b.pid]) - cpu0) / publishes * 1e6)
            finally:
                publisher.close()
                listener.close()
            log(f"metrics round {rnd + 1}/{rounds} {variant:3s} static {static_us[variant][-1]:6.1f} µs/req "
                f"({res.rps:,.0f} req/s), publish {publish_us[variant][-1]:6.1f} µs")
    for b in servers.values():
        b.stop()
    return MetricsResult(rounds=rounds, duration_s=duration, publishes=publishes, static_us=static_us,
                         publish_us=publish_us, static_rps=static_rps)
