"""Beacon benchmarks: static serving, change-to-event latency, SSE fan-out, watcher start-up, idle CPU
(also of polling a large tree), footprint, Redis scale-out (instances sharing events through Redis
Streams), past one process, and the proxy (`serve --proxy`) next to nginx's.

    python3 benchmarks/run.py                       # everything, full durations (~20 minutes)
    python3 benchmarks/run.py --quick               # shorter runs, smaller N (~3 minutes)
    python3 benchmarks/run.py --only static,idle    # a subset: static,latency,fanout,watcher,idle,polling,footprint,redis,scale,proxy,floor,https,metrics

The beacon binary is $BEACON_BIN, else .build-release/release/beacon, else .build/release/beacon.
Installs what is missing (apt-get as root, pip), starts every server on 127.0.0.1 with free ports,
bounds every loop in count and time, stops everything it started (also on Ctrl-C), prints one
table and writes benchmarks/RESULTS.md. Python 3 standard library only.
"""
import argparse
import datetime
import os
import signal
import subprocess
import time
import traceback

from .common import HERE, BenchError, log
from .dependencies import ensure_deps
from .machine import build_note, load_average, machine_info, versions
from .options import Options
from .processes import PROCS, remove_temporary_folders
from .report import Report, print_table
from .sections import NAMES, SECTIONS
from .servers import beacon_bin


def stream_counts(text):
    return [int(x) for x in text.split(",")]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(NAMES))
    ap.add_argument("--quick", action="store_true", help="shorter durations, smaller N")
    ap.add_argument("--fanout-n", type=stream_counts, help="comma-separated stream counts for Beacon's fan-out (default 1000,10000,19000; "
                    "quick: 1000)")
    ap.add_argument("--redis-instances", type=int, help="Beacon instances in the redis section (default 3; 2 to 12)")
    ap.add_argument("--redis-n", type=int, help="SSE streams per instance in the redis section (default 10000; "
                    "quick: 300)")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="where to write the report")
    args = ap.parse_args()
    names = NAMES if not args.only else [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in names if s not in NAMES]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {','.join(NAMES)}")
    if args.redis_n is not None and not 1 <= args.redis_n <= 19000:
        ap.error("--redis-n must be between 1 and 19000 (one load-client process per instance, 20k open files each)")
    if args.redis_instances is not None and not 2 <= args.redis_instances <= 12:
        ap.error("--redis-instances must be between 2 and 12")
    return args, [s for s in SECTIONS if s.name in names]


def main():
    args, selected = parse_args()
    names = [s.name for s in selected]

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)  # even if started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    results, failures = {}, []
    try:
        ensure_deps(names)
        options = Options(beacon=beacon_bin(), quick=args.quick, fanout_n=args.fanout_n, redis_n=args.redis_n,
                          redis_instances=args.redis_instances)
        machine = machine_info()
        tool_versions = versions(options.beacon, names)
        note = build_note(options.beacon)
        log(f"beacon: {options.beacon} ({tool_versions['beacon']}); sections: {','.join(names)}"
            f"{' (quick)' if options.quick else ''}; load average {machine.loadavg}")
        if float((machine.loadavg.split() or ["0"])[0].replace("?", "0")) > 1.0:
            log("warning: the machine is busy (1-min load average > 1): figures will be noisy")
        for section in selected:
            PROCS.section = section.name
            try:
                results[section.name] = section.run(options)
            except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                log(f"{section.name} FAILED: {e!r}")
                traceback.print_exc()
                failures.append((section.name, f"{type(e).__name__}: {e}"))
            finally:
                PROCS.stop_all()
        report = Report(quick=options.quick, sections=list(results) or names, started=started,
                        elapsed_s=time.monotonic() - t0, machine=machine, build_note=note,
                        loadavg_end=load_average(), versions=tool_versions, results=list(results.values()),
                        commands=PROCS.commands, failures=failures)
        rows = report.table_rows()
        if rows:
            print_table(rows)
        with open(args.out, "w") as f:
            f.write(report.markdown())
        log(f"wrote {args.out} ({(time.monotonic() - t0) / 60:.1f} min)")
        return 1 if failures else 0
    except KeyboardInterrupt:
        log("interrupted: stopping everything started")
        return 130
    except BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        PROCS.stop_all()
        remove_temporary_folders()
