"""5c. Polling's idle cost (issue 21): Beacon's CPU on a 10,000-file tree with nothing changing,
polling (`--poll`, default interval) next to inotify. Target: at most 2 % of one core."""
import time
from dataclasses import dataclass

from ..common import log
from ..options import Options
from ..processes import PROCS, cpu_seconds, mktemp, rss_kib
from ..servers import Beacon
from .watcher import make_tree

TARGET_PCT = 2.0


@dataclass
class IdleWatch:
    mode: str  # "poll" or "inotify"
    cpu_s: float  # utime + stime over the duration
    cpu_pct: float  # of one core
    rss_kib: int
    watched: int | None  # watchedDirectories from /__beacon/status


@dataclass
class PollingResult:
    files: int
    dirs: int
    duration_s: float
    runs: list[IdleWatch]

    def _of(self, mode):
        return next(r for r in self.runs if r.mode == mode)

    def table_rows(self):
        return [("polling", f"beacon {r.mode}, {self.files:,} files idle {self.duration_s:.0f} s",
                 f"{r.cpu_pct:.2f} % of a core, RSS {r.rss_kib / 1024:.1f} MiB") for r in self.runs]

    def markdown(self):
        poll, inotify = self._of("poll"), self._of("inotify")
        out = ["## 5c. Polling's idle cost (issue 21)\n"]
        out.append(f"{self.files:,} files in {self.dirs:,} directories under /tmp (page cache warm), nothing "
                   f"changing, for {self.duration_s:.0f} s after start-up: utime+stime from `/proc/PID/stat` of "
                   "`beacon serve TREE --port 0 --quiet --poll` (a scan every 1 s, the default) and of the same "
                   "without `--poll` (inotify).\n")
        out.append("| watcher | CPU seconds | % of one core | RSS MiB | dirs watched |")
        out.append("|---|---:|---:|---:|---:|")
        for r in (poll, inotify):
            out.append(f"| {'polling every 1 s' if r.mode == 'poll' else 'inotify'} | {r.cpu_s:.2f} | "
                       f"{r.cpu_pct:.2f} | {r.rss_kib / 1024:.1f} | {r.watched:,} |")
        out.append("")
        verdict = "within" if poll.cpu_pct <= TARGET_PCT else "OVER"
        out.append(f"- Polling: {poll.cpu_pct:.2f} % of one core, {verdict} the {TARGET_PCT:.0f} % target; "
                   f"{poll.cpu_s / self.duration_s * 1000 / self.files * 1000:.2f} µs of CPU per file per scan. "
                   "CPU time is counted in clock ticks (10 ms each).\n")
        return out


def _measure(options, tree, mode, duration):
    b = Beacon(options.beacon, tree, extra=("--poll",) if mode == "poll" else ())
    try:
        status = b.status()  # answers once serving: the first scan (or the watches) are in place
        time.sleep(1.0)  # let start-up work settle before counting
        cpu0, t0 = cpu_seconds([b.pid]), time.monotonic()
        time.sleep(duration)
        cpu1, t1 = cpu_seconds([b.pid]), time.monotonic()
        rss = rss_kib(b.pid)
    finally:
        b.stop()
    cpu = cpu1 - cpu0
    pct = 100 * cpu / (t1 - t0)
    log(f"polling: beacon {mode}: {cpu:.2f} CPU s over {t1 - t0:.1f} s ({pct:.2f} % of a core)")
    return IdleWatch(mode=mode, cpu_s=cpu, cpu_pct=pct, rss_kib=rss, watched=status.get("watchedDirectories"))


def run(options: Options) -> PollingResult:
    dirs, files = 1000, 10000
    duration = 10 if options.quick else 30
    tree = mktemp("beacon-bench-poll-")
    ndirs = make_tree(tree, dirs, files)
    PROCS.record(f"{options.beacon} serve TREE --port 0 --quiet --poll   # {files:,} files, idle; utime+stime "
                 f"from /proc/PID/stat over {duration} s; then the same without --poll")
    runs = [_measure(options, tree, mode, duration) for mode in ("poll", "inotify")]
    return PollingResult(files=files, dirs=ndirs, duration_s=float(duration), runs=runs)
