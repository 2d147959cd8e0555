"""Processes: everything started here is in its own process group and is stopped at the end; temporary
folders are removed at the end; and what /proc says about a process (CPU time, memory, children)."""
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from .common import BenchError, log


class Procs:
    def __init__(self):
        self.items = []
        self.commands = {}  # section -> [command line]
        self.section = "setup"

    def record(self, cmd):
        line = cmd if isinstance(cmd, str) else shlex.join(str(c) for c in cmd)
        lst = self.commands.setdefault(self.section, [])
        if line not in lst:
            lst.append(line)

    def start(self, cmd, record=True, **kw):
        if record:
            self.record(cmd)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(c) for c in cmd], start_new_session=True, **kw)
        self.items.append(p)
        return p

    def stop(self, p, timeout=5.0):
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    log(f"warning: process {p.pid} did not exit")
        else:
            # The leader is gone; its group may still hold children (gunicorn workers).
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        if p in self.items:
            self.items.remove(p)

    def stop_all(self):
        for p in list(reversed(self.items)):
            self.stop(p, timeout=3.0)


PROCS = Procs()
_temporary_folders = []


def run(cmd, timeout=120, record=True, check=True, **kw):
    if record:
        PROCS.record(cmd)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(str(c) for c in cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return r


def mktemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    _temporary_folders.append(d)
    return d


def remove_temporary_folders():
    for d in _temporary_folders:
        shutil.rmtree(d, ignore_errors=True)


def read_line(f, timeout, what="a line"):
    """Reads one line from a pipe within `timeout` seconds (raw fd reads, no buffering surprises)."""
    fd = f.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what} (got {buf[-200:]!r})")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 1)
            if not chunk:
                raise BenchError(f"pipe closed while waiting for {what} (got {buf[-200:]!r})")
            buf += chunk
    return buf.decode(errors="replace").rstrip("\r\n")


def _proc_kib(path, key):
    """The `key: N kB` figure of a /proc file (0 if the process is gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid):
    return _proc_kib(f"/proc/{pid}/status", "VmRSS")


def smaps_kib(pid, key):
    return _proc_kib(f"/proc/{pid}/smaps_rollup", key)


def _stat_fields(pid):
    """/proc/PID/stat after the command name: fields[0] is field 3 (state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _children_by_parent():
    kids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                kids.setdefault(int(_stat_fields(entry)[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def with_children(pid):
    """pid and its direct children (nginx's workers)."""
    return [pid] + _children_by_parent().get(pid, [])


def descendants(pid):
    kids = _children_by_parent()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cpu_seconds(pids):
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            # utime and stime are fields 14 and 15.
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")
