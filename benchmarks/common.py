"""What every module of the harness shares: where things are, the error type, the log line and the clock."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOOPBACK = "127.0.0.1"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mono_ns():
    """CLOCK_MONOTONIC in ns: the clock every stamp in these benchmarks uses (one clock machine-wide)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)
