"""What the report says about the machine and the software measured: CPUs, memory, kernel, load average,
open-file limits, the beacon build, and the versions of the tools each selected section uses."""
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
from dataclasses import dataclass

from .common import REPO
from .servers import nginx_bin


@dataclass
class Machine:
    nproc: int
    kernel: str
    loadavg: str
    nofile: tuple[int, int]  # soft, hard
    mem: str = "?"
    cpu: str = "?"
    os: str = "?"


def load_average():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg writes them."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info():
    info = Machine(nproc=os.cpu_count(), kernel=platform.release(), loadavg=load_average(),
                   nofile=resource.getrlimit(resource.RLIMIT_NOFILE))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info.mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info.cpu = m.group(1).strip() if m else "?"
        with open("/etc/os-release") as f:
            m = re.search(r'PRETTY_NAME="?([^"\n]*)', f.read())
            info.os = m.group(1) if m else "?"
    except OSError:
        pass
    return info


def build_note(beacon):
    """The binary, when it was built and from which commit (and whether Sources/ had uncommitted changes)."""
    try:
        built = datetime.datetime.fromtimestamp(os.path.getmtime(beacon), datetime.timezone.utc)
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        return (f"`{beacon}`, built {built.strftime('%Y-%m-%d %H:%M UTC')}; repository at {head or '?'}"
                f"{' with uncommitted changes under Sources/' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        return f"`{beacon}`"


def _first_line(cmd, stream="stdout"):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        out = (r.stdout if stream == "stdout" else r.stderr) or r.stdout or r.stderr
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def versions(beacon, sections):
    """Tool -> version, for beacon, python and the tools of the selected sections (names)."""
    v = {"beacon": _first_line([beacon, "--version"])}
    if "static" in sections or "proxy" in sections:
        v["nginx"] = _first_line([nginx_bin() or "nginx", "-v"], "stderr")
        v["wrk"] = _first_line(["wrk", "-v"])
    if "latency" in sections or "watcher" in sections:
        v["inotifywait"] = _first_line(["inotifywait", "--help"])
    if "fanout" in sections or "redis" in sections or "scale" in sections:
        v["redis"] = _first_line(["redis-server", "--version"])
        v["gcc"] = _first_line(["gcc", "--version"])
    v["python"] = sys.version.split()[0]
    mods = (["livereload"] if "static" in sections else []) + \
        (["flask", "flask_sse", "gunicorn", "gevent", "redis"] if "fanout" in sections else [])
    for mod in mods:
        dist = {"flask_sse": "flask-sse"}.get(mod, mod)
        r = subprocess.run([sys.executable, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                           capture_output=True, text=True)
        v[dist] = r.stdout.strip() or "?"
    return v
