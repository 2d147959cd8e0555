"""The C load client (sse_load.c): built with gcc into a temporary folder, run, and its key=value output
lines (READY, RESULT, HELD) and --dump files read back."""
import math
import os
import re
import subprocess
import time
from dataclasses import dataclass, fields
from typing import ClassVar

from .common import HERE
from .processes import PROCS, read_line, run

KEY_VALUE_RE = re.compile(r"(\w+)=(\S+)")


def build_load_client(tmp):
    exe = os.path.join(tmp, "sse_load")
    run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "sse_load.c")], timeout=120)
    return exe


def source_count(n):
    """Source addresses 127.0.0.2.. to spread n streams over (each holds at most ~28k ports)."""
    return max(4, math.ceil(n / 20000) + 1)


def parse_kv(line):
    out = {}
    for k, v in KEY_VALUE_RE.findall(line):
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


class _Line:
    """A line sse_load prints: PREFIX followed by key=value pairs, one per field."""
    PREFIX: ClassVar[str]

    @classmethod
    def parse(cls, line):
        values = parse_kv(line)
        return cls(**{f.name: values[f.name] for f in fields(cls)})


@dataclass
class Ready(_Line):
    """Every stream is connected (and with --ready headers, has its response headers)."""
    PREFIX: ClassVar[str] = "READY"
    connected: int
    headers: int
    failed: int
    elapsed_ms: float


@dataclass
class Delivery(_Line):
    """One published event's arrival over the streams: latencies in ms, or "NA" if too few got it."""
    PREFIX: ClassVar[str] = "RESULT"
    round: int
    ready: int
    connected: int
    headers: int
    failed: int
    received: int
    lost: int
    closed: int
    p50_ms: float | str
    p99_ms: float | str
    max_ms: float | str
    t50_ms: float | str
    t99_ms: float | str
    t100_ms: float | str


@dataclass
class Held(_Line):
    """With --hold: events received on all streams since the rounds, streams closed, late stamped events."""
    PREFIX: ClassVar[str] = "HELD"
    events: int
    closed: int
    late: int
    done: int


def read_report(p, kind, timeout, what):
    """The next line of p's stdout of this kind (Ready, Delivery, Held), parsed."""
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(p.stdout, max(0.1, deadline - time.monotonic()), what)
        if line.startswith(kind.PREFIX):
            return kind.parse(line)


def run_load(exe, port, path, n, ready_mode, on_ready, connect_timeout, wait, linger, browser=False):
    """One sse_load run of one round: on_ready(Ready) is called once the streams are ready (it publishes the
    event); returns (Ready, Delivery)."""
    cmd = [exe, "--port", port, "-n", n, "--path", path, "--ready", ready_mode, "--src-count", source_count(n),
           "--connect-timeout", connect_timeout, "--wait", wait, "--linger", linger,
           "--browser", "yes" if browser else "no"]
    p = PROCS.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_line(p.stdout, 10, "sse_load's LIMIT line")
        ready = read_report(p, Ready, connect_timeout + 30, "sse_load's READY line")
        on_ready(ready)
        result = read_report(p, Delivery, wait + linger + 30, "sse_load's RESULT line")
        p.wait(10)
        return ready, result
    finally:
        PROCS.stop(p)


def held_counts(loads, timeout=30.0):
    """Asks every held load client (COUNT on its stdin) how many events its streams got so far."""
    for p in loads:
        p.stdin.write(b"COUNT\n")
        p.stdin.flush()
    return [read_report(p, Held, timeout, "sse_load's HELD line") for p in loads]


def read_dump(path):
    """A --dump file: round (1-based) -> the raw latencies in ns of the streams that got its event."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, v = line.split()
                out.setdefault(int(k), []).append(int(v))
    except (OSError, ValueError):
        pass
    return out
