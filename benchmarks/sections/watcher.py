"""4. Watching a large tree: Beacon's start-up on 100,000 files in 10,000 folders until every folder is
watched, next to inotifywait -r, with Beacon on a 5-file site as the baseline."""
import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass

from ..common import log
from ..options import Options
from ..processes import PROCS, mktemp, read_line, rss_kib, run as run_command
from ..servers import Beacon, make_site


@dataclass
class BeaconWatch:
    line_s: float | None  # spawn -> the Serving line
    watched_s: float | None  # spawn -> /__beacon/status shows every folder watched
    watched: int | None  # watchedDirectories then
    rss_kib: float | None


@dataclass
class InotifyWatch:
    established_s: float | None  # spawn -> 'Watches established.'
    rss_kib: float | None


@dataclass
class WatcherResult:
    files: int
    dirs: int
    want: int  # folders to watch: dirs and the root
    reps: int
    limit_note: str  # fs.inotify.max_user_watches and what was done about it
    baseline_line_s: float  # Beacon on a 5-file site, spawn -> the Serving line
    beacon: BeaconWatch  # medians over the runs (watched: the last run's)
    inotifywait: InotifyWatch  # medians over the runs
    beacon_runs: list[BeaconWatch]
    inotifywait_runs: list[InotifyWatch]

    def table_rows(self):
        b, i = self.beacon, self.inotifywait
        return [("watcher", f"beacon {self.files:,} files / {self.dirs:,} dirs",
                 f"line {b.line_s:.3f} s, all {b.watched:,} watched {b.watched_s:.3f} s, "
                 f"RSS {b.rss_kib / 1024:.1f} MiB"),
                ("watcher", "inotifywait -r -m",
                 f"established {i.established_s:.3f} s, RSS {i.rss_kib / 1024:.1f} MiB")]

    def markdown(self):
        b, i = self.beacon, self.inotifywait
        out = ["## 4. Watching a large tree\n"]
        out.append(f"{self.files:,} files in {self.dirs:,} directories under /tmp (page cache warm), median of "
                   f"{self.reps} run(s). Beacon: time from spawning `beacon serve TREE --port 0` to its `Serving` line, "
                   f"and until `/__beacon/status` shows `watchedDirectories` = {self.want:,}. inotifywait: time to "
                   f"`Watches established.` on stderr. {self.limit_note}.\n")
        out.append("| watcher | ready line s | all watched s | dirs watched | RSS MiB |")
        out.append("|---|---:|---:|---:|---:|")
        out.append(f"| Beacon | {b.line_s:.3f} | {b.watched_s:.3f} | {b.watched:,} | {b.rss_kib / 1024:.1f} |")
        out.append(f"| inotifywait -r -m | {i.established_s:.3f} | {i.established_s:.3f} | {self.want:,} | "
                   f"{i.rss_kib / 1024:.1f} |")
        out.append(f"| Beacon on a 5-file site (start-up baseline) | {self.baseline_line_s:.3f} | | 1 | |")
        out.append("")
        out.append(f"- Beacon's start-up less its baseline: {b.watched_s - self.baseline_line_s:.3f} s for "
                   f"{self.want:,} directories ({(b.watched_s - self.baseline_line_s) / self.want * 1e6:.1f} µs "
                   f"per directory; inotifywait {i.established_s / self.want * 1e6:.1f} µs).")
        out.append(f"- Beacon / inotifywait start-up: {b.watched_s / i.established_s:.2f}×; "
                   f"RSS {b.rss_kib / max(1, i.rss_kib):.1f}×.")
        runs = {"beacon": [asdict(r) for r in self.beacon_runs],
                "inotifywait": [asdict(r) for r in self.inotifywait_runs]}
        out.append("- Runs: " + json.dumps(runs) + "\n")
        return out


def make_tree(root, dirs, files):
    """`dirs` directories (dirs/100 top folders of 99 subfolders each) holding `files` files evenly."""
    assert dirs % 100 == 0
    all_dirs = []
    for t in range(dirs // 100):
        top = os.path.join(root, f"a{t:03d}")
        os.mkdir(top)
        all_dirs.append(top)
        for s in range(99):
            sub = os.path.join(top, f"b{s:02d}")
            os.mkdir(sub)
            all_dirs.append(sub)
    per = files // dirs
    body = b"<p>x</p>\n"
    for d in all_dirs:
        for i in range(per):
            with open(os.path.join(d, f"f{i}.html"), "wb") as f:
                f.write(body)
    return len(all_dirs)


def ensure_inotify_limit(needed):
    path = "/proc/sys/fs/inotify/max_user_watches"
    with open(path) as f:
        cur = int(f.read())
    note = f"fs.inotify.max_user_watches = {cur:,}"
    if cur >= needed:
        return note + f" (enough for {needed:,})"
    if os.geteuid() == 0:
        r = run_command(["sysctl", "-w", "fs.inotify.max_user_watches=524288"], check=False)
        with open(path) as f:
            new = int(f.read())
        if new >= needed:
            return note + f", raised to {new:,} with sysctl"
        return note + f"; raising it failed ({r.stderr.strip()}): results for > {cur:,} dirs are partial"
    return note + f"; not root, cannot raise it: results for > {cur:,} dirs are partial"


def _median(runs, field):
    vals = [getattr(r, field) for r in runs if getattr(r, field) is not None]
    return statistics.median(vals) if vals else None


def run(options: Options) -> WatcherResult:
    dirs, files = (1000, 10000) if options.quick else (10000, 100000)
    reps = 1 if options.quick else 3
    tree = mktemp("beacon-bench-tree-")
    t0 = time.monotonic()
    ndirs = make_tree(tree, dirs, files)
    log(f"watcher: made {files:,} files in {ndirs:,} dirs in {time.monotonic() - t0:.1f} s")
    limit_note = ensure_inotify_limit(ndirs + 1 + 100)
    want = ndirs + 1
    PROCS.record(f"{options.beacon} serve TREE --port 0 --quiet   # until the 'Serving' line and "
                 f"/__beacon/status watchedDirectories == {want:,}")
    PROCS.record("inotifywait -r -m TREE   # until 'Watches established.' on stderr")
    beacon_runs, inw_runs, base_runs = [], [], []
    small = mktemp("beacon-bench-small-")
    make_site(small)
    for rep in range(reps):
        b = Beacon(options.beacon, small)
        base_runs.append(b.t_line - b.t_start)
        b.stop()
    for rep in range(reps):
        b = Beacon(options.beacon, tree)
        try:
            t_line = b.t_line - b.t_start
            deadline = time.monotonic() + 300
            watched = -1
            while time.monotonic() < deadline:
                watched = b.status().get("watchedDirectories", -1)
                if watched >= want:
                    break
                time.sleep(0.01)
            t_all = time.monotonic() - b.t_start
            rss = rss_kib(b.pid)
            beacon_runs.append(BeaconWatch(line_s=t_line, watched_s=t_all, watched=watched, rss_kib=rss))
            log(f"watcher beacon run {rep + 1}: line {t_line:.3f} s, {watched:,} watched at {t_all:.3f} s, "
                f"RSS {rss:,} KiB")
        finally:
            b.stop()
        t_start = time.monotonic()
        p = PROCS.start(["inotifywait", "-r", "-m", tree], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            t_est = None
            for _ in range(5):
                line = read_line(p.stderr, 300, "'Watches established.'")
                if "established" in line:
                    t_est = time.monotonic() - t_start
                    break
            rss = rss_kib(p.pid)
            inw_runs.append(InotifyWatch(established_s=t_est, rss_kib=rss))
            log(f"watcher inotifywait run {rep + 1}: established {t_est:.3f} s, RSS {rss:,} KiB")
        finally:
            PROCS.stop(p)

    result = WatcherResult(
        files=files, dirs=ndirs, want=want, reps=reps, limit_note=limit_note,
        baseline_line_s=statistics.median(base_runs),
        beacon=BeaconWatch(line_s=_median(beacon_runs, "line_s"), watched_s=_median(beacon_runs, "watched_s"),
                           watched=beacon_runs[-1].watched if beacon_runs else None,
                           rss_kib=_median(beacon_runs, "rss_kib")),
        inotifywait=InotifyWatch(established_s=_median(inw_runs, "established_s"),
                                 rss_kib=_median(inw_runs, "rss_kib")),
        beacon_runs=beacon_runs, inotifywait_runs=inw_runs)
    shutil.rmtree(tree, ignore_errors=True)
    return result
