#!/usr/bin/env python3
"""Beacon benchmarks: static serving, change-to-event latency, SSE fan-out, watcher start-up, idle CPU,
Redis scale-out (three instances sharing events through Redis Streams).

    python3 benchmarks/run.py                       # everything, full durations (~10 minutes)
    python3 benchmarks/run.py --quick               # shorter runs, smaller N (~3 minutes)
    python3 benchmarks/run.py --only static,idle    # a subset: static,latency,fanout,watcher,idle,redis

The beacon binary is $BEACON_BIN, else .build-release/release/beacon, else .build/release/beacon.
Installs what is missing (apt-get as root, pip), starts every server on 127.0.0.1 with free ports,
bounds every loop in count and time, stops everything it started (also on Ctrl-C), prints one
table and writes benchmarks/RESULTS.md. Python 3 standard library only.
"""
import argparse
import datetime
import http.client
import json
import math
import os
import platform
import queue
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SECTIONS = ["static", "latency", "fanout", "watcher", "idle", "footprint", "redis", "scale"]
LOOPBACK = "127.0.0.1"


def mono_ns():
    """CLOCK_MONOTONIC in ns: the clock every stamp in these benchmarks uses (one clock machine-wide)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Processes: everything started here is in its own process group and is stopped at the end.
# --------------------------------------------------------------------------------------------
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
TMPDIRS = []


def run(cmd, timeout=120, record=True, check=True, **kw):
    if record:
        PROCS.record(cmd)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(str(c) for c in cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return r


def mktemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    TMPDIRS.append(d)
    return d


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s")


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


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def http_get(port, path, timeout=10.0):
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def pct(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


# --------------------------------------------------------------------------------------------
# Dependencies
# --------------------------------------------------------------------------------------------
def nginx_bin():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def ensure_deps(sections):
    need = []  # (check, [apt package alternatives])
    if "static" in sections:
        need += [(nginx_bin, ["nginx-light", "nginx"]), (lambda: shutil.which("wrk"), ["wrk"])]
    if "footprint" in sections:
        need += [(nginx_bin, ["nginx-light", "nginx"]), (lambda: shutil.which("inotifywait"), ["inotify-tools"])]
    if "latency" in sections or "watcher" in sections:
        need += [(lambda: shutil.which("inotifywait"), ["inotify-tools"])]
    if "fanout" in sections or "redis" in sections or "scale" in sections:
        need += [(lambda: shutil.which("gcc"), ["gcc"]), (lambda: shutil.which("redis-server"), ["redis-server"])]
    missing = [alts for check, alts in need if not check()]
    if missing:
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is None:
            raise BenchError(f"missing {missing} and not root (no sudo): install them first")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log("apt-get update (once), then install: " + ", ".join(a[0] for a in missing))
        run(sudo + ["apt-get", "update", "-qq"], timeout=600, env=env)
        # Keep the packages' maintainer scripts from starting system services (nginx on port 80).
        policy = "/usr/sbin/policy-rc.d"
        made_policy = False
        if os.geteuid() == 0 and not os.path.exists(policy):
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
            made_policy = True
        try:
            for alts in missing:
                for i, pkg in enumerate(alts):
                    r = run(sudo + ["apt-get", "install", "-y", "-qq", pkg], timeout=900, env=env, check=False)
                    if r.returncode == 0:
                        break
                    if i == len(alts) - 1:
                        raise BenchError(f"apt-get install {pkg} failed: {r.stderr.strip()[-500:]}")
        finally:
            if made_policy:
                os.remove(policy)
    pip = []
    if "static" in sections:
        pip += [("livereload", "livereload")]
    if "fanout" in sections:
        pip += [("flask", "flask"), ("flask_sse", "flask-sse"), ("gunicorn", "gunicorn"), ("gevent", "gevent"),
                ("redis", "redis")]
    missing_pip = [pkg for mod, pkg in pip
                   if subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode != 0]
    if missing_pip:
        log("pip install " + " ".join(missing_pip))
        run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + missing_pip, timeout=900)


def beacon_bin():
    env = os.environ.get("BEACON_BIN")
    cands = [env] if env else [os.path.join(REPO, ".build-release/release/beacon"),
                               os.path.join(REPO, ".build/release/beacon")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise BenchError(f"no beacon binary at {' or '.join(c for c in cands if c)}: build it (swift build -c release) "
                     "or set BEACON_BIN")


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------
class Beacon:
    def __init__(self, binary, root, extra=(), logdir=None):
        self.binary = binary
        logdir = logdir or mktemp("beacon-log-")
        self.logpath = os.path.join(logdir, f"beacon-{len(os.listdir(logdir))}.log")
        self.t_start = time.monotonic()
        self.proc = PROCS.start([binary, "serve", root, "--port", "0", "--quiet", *extra],
                                stdout=subprocess.PIPE, stderr=open(self.logpath, "w"))
        try:
            line = read_line(self.proc.stdout, 180, "beacon's 'Serving ... at' line")
        except BenchError as e:
            raise BenchError(f"{e}; beacon log: {self.log_tail()}")
        self.t_line = time.monotonic()
        m = re.search(r" at http://[^\s/]+:(\d+)/", line)
        if not m:
            raise BenchError(f"unexpected first line from beacon: {line!r}")
        self.port = int(m.group(1))
        self.pid = self.proc.pid

    def log_tail(self):
        try:
            with open(self.logpath) as f:
                return f.read()[-1000:].strip() or "(empty)"
        except OSError:
            return "(none)"

    def status(self):
        code, _, body = http_get(self.port, "/__beacon/status")
        if code != 200:
            raise BenchError(f"/__beacon/status answered {code}")
        return json.loads(body)

    def stop(self):
        PROCS.stop(self.proc)


def start_nginx(root, port, tmp):
    conf = os.path.join(tmp, "nginx.conf")
    user = ""
    if os.geteuid() == 0:
        user = "user root root;\n"  # run the workers as the current user (root here)
    with open(conf, "w") as f:
        f.write(f"""{user}worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/html html; application/octet-stream bin; }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {LOOPBACK}:{port};
        root {root};
    }}
}}
""")
    p = PROCS.start([nginx_bin(), "-p", tmp + "/", "-c", conf, "-e", os.path.join(tmp, "error.log")],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr.log"), "w"))
    wait_port(port, 15, p)
    return p


LIVERELOAD_CMD = ("from livereload import Server; s = Server(); "
                  "s.serve(root={root!r}, port={port}, host='127.0.0.1', open_url_delay=None)")


def start_livereload(root, port, tmp):
    p = PROCS.start([sys.executable, "-c", LIVERELOAD_CMD.format(root=root, port=port)],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "livereload.log"), "w"), cwd=root)
    wait_port(port, 30, p)
    return p


# --------------------------------------------------------------------------------------------
# A raw-socket SSE client (handles chunked transfer encoding), stamping every recv.
# --------------------------------------------------------------------------------------------
class SSEClient:
    def __init__(self, port, path="/__beacon/events", timeout=10.0):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                raise BenchError("no SSE response headers")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError(f"SSE connection closed before headers: {buf!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n", 1)[0].decode()
        if " 200" not in self.status_line:
            raise BenchError(f"SSE request answered {self.status_line}")
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.cbuf = b""
        self.cleft = 0
        self.lbuf = b""
        self.ev_name, self.ev_data = None, []
        self.events = queue.Queue()
        self.comments = 0
        self.closed = False
        if rest:
            self._body(rest, mono_ns())

    def _body(self, b, t):
        if not self.chunked:
            return self._sse(b, t)
        self.cbuf += b
        while self.cbuf:
            if self.cleft == 0:
                i = self.cbuf.find(b"\r\n")
                if i < 0:
                    return
                line, self.cbuf = self.cbuf[:i], self.cbuf[i + 2:]
                if not line:
                    continue  # the CRLF after a chunk's data
                self.cleft = int(line.split(b";")[0], 16)
                if self.cleft == 0:
                    self.closed = True
                    return
            else:
                take, self.cbuf = self.cbuf[:self.cleft], self.cbuf[self.cleft:]
                self.cleft -= len(take)
                self._sse(take, t)

    def _sse(self, b, t):
        self.lbuf += b
        while b"\n" in self.lbuf:
            line, self.lbuf = self.lbuf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode(errors="replace")
            if line == "":
                if self.ev_data:
                    self.events.put((self.ev_name or "message", "\n".join(self.ev_data), t))
                self.ev_name, self.ev_data = None, []
            elif line.startswith(":"):
                self.comments += 1
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    self.ev_name = value
                elif field == "data":
                    self.ev_data.append(value)

    def pump(self, timeout):
        """Reads what is there (one recv, at most `timeout` seconds); False once the stream closed."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        try:
            b = self.sock.recv(65536)
        except OSError:
            b = b""
        t = mono_ns()
        if not b:
            self.closed = True
            return False
        self._body(b, t)
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


WRITER = r"""
import os, sys, time
path = sys.argv[1]
try:  # real-time priority (root only), so the stamp is not delayed by other work on the machine
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except (OSError, AttributeError):
    pass
n = 0
for _ in sys.stdin:
    n += 1
    with open(path, "w") as f:
        f.write("body { --sample: %d; }\n" % n)
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)  # right after close()
    sys.stdout.write("%d\n" % t)
    sys.stdout.flush()
"""


class Writer:
    """A separate process that writes+closes a file on request and answers its CLOCK_MONOTONIC stamp."""

    def __init__(self, path):
        self.proc = PROCS.start([sys.executable, "-c", WRITER, path], record=False,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def request(self):
        self.proc.stdin.write(b"w\n")
        self.proc.stdin.flush()

    def stop(self):
        PROCS.stop(self.proc)


# --------------------------------------------------------------------------------------------
# 1. Static
# --------------------------------------------------------------------------------------------
def make_site(d):
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<!doctype html><html><body><p>bench</p></body></html>\n")
    with open(os.path.join(d, "style.css"), "w") as f:
        f.write("body { color: black; }\n")

    def page(size):
        head = "<!doctype html>\n<html><head><meta charset=utf-8><title>bench</title>" \
               "<link rel=stylesheet href=style.css></head>\n<body>\n"
        tail = "</body>\n</html>\n"
        filler = size - len(head) - len(tail)
        para = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n"
        body = (para * (filler // len(para) + 1))[:filler]
        return head + body + tail

    with open(os.path.join(d, "page1k.html"), "w") as f:
        f.write(page(1024))
    with open(os.path.join(d, "page100k.html"), "w") as f:
        f.write(page(100 * 1024))
    with open(os.path.join(d, "blob1m.bin"), "wb") as f:
        f.write(os.urandom(1024 * 1024))


WRK_RE = re.compile(r"Requests/sec:\s+([\d.]+)")


def wrk(port, path, duration, threads=2, conns=64):
    url = f"http://{LOOPBACK}:{port}{path}"
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", url]
    r = run(cmd, timeout=duration + 60, record=False)
    m = WRK_RE.search(r.stdout)
    if not m:
        raise BenchError(f"cannot read wrk output: {r.stdout[-500:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    errors = re.search(r"Socket errors:(.*)", r.stdout)
    lat = re.search(r"Latency\s+([\d.]+\w+)", r.stdout)
    total = re.search(r"(\d+) requests in", r.stdout)
    return {"rps": float(m.group(1)), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1).strip() if errors else "", "latency_avg": lat.group(1) if lat else "?",
            "requests": int(total.group(1)) if total else 0}


def with_children(pid):
    """pid and its direct children (nginx's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def cpu_seconds(pids):
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_static(ctx):
    dur = 3 if ctx.quick else 10
    rounds = 1 if ctx.quick else 3
    site = mktemp("beacon-bench-site-")
    os.chmod(site, 0o755)
    make_site(site)
    files = [("1 KiB HTML", "/page1k.html"), ("100 KiB HTML", "/page100k.html"), ("1 MiB binary", "/blob1m.bin")]
    tmp = mktemp("beacon-bench-static-")
    os.chmod(tmp, 0o755)
    results = {}  # (server, file) -> dict
    sizes = {}
    PROCS.record(f"wrk -t2 -c64 -d1s URL   # warm-up, then: wrk -t2 -c64 -d{dur}s --timeout 5s URL")

    # All three run at once (idle while not measured), and each file is measured on the three
    # servers back to back, so background load on the shared machine hits them alike.
    b = Beacon(ctx.beacon, site)
    ng_port = free_port()
    ng_proc = start_nginx(site, ng_port, tmp)
    lr_port = free_port()
    lr_proc = start_livereload(site, lr_port, tmp)
    servers = [("beacon", b.port), ("nginx", ng_port), ("livereload", lr_port)]
    # Server CPU per request: steadier than req/s here, where wrk takes its share of the same 2 cores.
    server_pids = {"beacon": [b.pid], "nginx": with_children(ng_proc.pid), "livereload": [lr_proc.pid]}
    runs = {}  # (server, file) -> [wrk result per round]
    for rnd in range(rounds):
        for label, path in files:
            for server, port in servers:
                if rnd == 0:
                    code, headers, body = http_get(port, path)
                    if code != 200:
                        raise BenchError(f"{server} answered {code} for {path}")
                    sizes[(server, label)] = len(body)
                wrk(port, path, 1)  # warm-up
                cpu0 = cpu_seconds(server_pids[server])
                res = wrk(port, path, dur)
                cpu = cpu_seconds(server_pids[server]) - cpu0
                res["us_per_req"] = cpu / res["requests"] * 1e6 if res["requests"] and server_pids[server] else None
                runs.setdefault((server, label), []).append(res)
                log(f"static round {rnd + 1}/{rounds} {server:10s} {label:13s} {res['rps']:>10,.0f} req/s  "
                    f"{res['us_per_req'] or 0:6.1f} µs CPU/req  "
                    f"(body {sizes[(server, label)]:,} B, non-2xx {res['non2xx']}, errors '{res['errors']}')")
    for key, rs in runs.items():
        rps = sorted(r["rps"] for r in rs)
        med = dict(sorted(rs, key=lambda r: r["rps"])[len(rs) // 2])
        cpus = [r["us_per_req"] for r in rs if r.get("us_per_req")]
        med.update(rps=statistics.median(rps), rps_min=rps[0], rps_max=rps[-1],
                   us_per_req=statistics.median(cpus) if cpus else None,
                   non2xx=sum(r["non2xx"] for r in rs), errors="; ".join(r["errors"] for r in rs if r["errors"]))
        results[key] = med
    PROCS.stop_all()

    rows = []
    for label, _ in files:
        ref = results[("nginx", label)]["rps"]
        ref_cpu = results[("nginx", label)]["us_per_req"]
        for server in ("beacon", "nginx", "livereload"):
            r = results[(server, label)]
            rows.append({"file": label, "server": server, "rps": r["rps"], "ratio": r["rps"] / ref if ref else None,
                         "us_per_req": r["us_per_req"],
                         "cpu_ratio": r["us_per_req"] / ref_cpu if r["us_per_req"] and ref_cpu else None,
                         "bytes": sizes[(server, label)], "non2xx": r["non2xx"], "errors": r["errors"],
                         "latency_avg": r["latency_avg"], "rps_min": r["rps_min"], "rps_max": r["rps_max"]})
    # Each round measures the servers back to back, so a round's ratio is the paired comparison:
    # background load on the shared machine shifts both figures of a round alike.
    paired = {label: {"rps": [b["rps"] / n["rps"] if n["rps"] else None
                              for b, n in zip(runs[("beacon", label)], runs[("nginx", label)])],
                      "cpu": [b["us_per_req"] / n["us_per_req"] if b.get("us_per_req") and n.get("us_per_req")
                              else None for b, n in zip(runs[("beacon", label)], runs[("nginx", label)])]}
              for label, _ in files}
    ctx.results["static"] = {"duration_s": dur, "rounds": rounds, "rows": rows, "paired": paired}


# --------------------------------------------------------------------------------------------
# 2. Change -> event latency
# --------------------------------------------------------------------------------------------
WARMUP_SAMPLES = 3


def summarize_ms(samples_ns):
    s = sorted(x / 1e6 for x in samples_ns)
    return {"n": len(s), "p50": pct(s, 50), "p95": pct(s, 95), "p99": pct(s, 99),
            "min": s[0] if s else float("nan"), "max": s[-1] if s else float("nan"),
            "negative": sum(1 for x in s if x < 0), "below_20ms": sum(1 for x in s if x < 20), "raw_ms": s}


def timed_samples(writer, fd, feed, samples, spacing):
    """One thread, one select() over the writer's stamp pipe and the watched stream, so each side is
    stamped the moment it is readable. feed(bytes, t) returns True when the awaited event completed.
    WARMUP_SAMPLES unmeasured samples come first; each sample waits at most 3 s for its event."""
    wfd = writer.proc.stdout.fileno()
    lat, extra = [], 0
    with realtime():
        for i in range(-WARMUP_SAMPLES, samples):
            extra += one_sample(i, writer, fd, wfd, feed, lat, spacing)
    timeouts = samples - len(lat)
    res = summarize_ms(lat)
    res.update(timeouts=timeouts, extra_events=extra)
    return res


class realtime:
    """SCHED_FIFO for this process while measuring (root only; children started before keep their policy),
    so the arrival stamp is not delayed by other work on the shared machine. The servers stay SCHED_OTHER."""

    def __enter__(self):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            self.on = True
        except (OSError, AttributeError):
            self.on = False
        return self

    def __exit__(self, *exc):
        if self.on:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def realtime_available():
    try:
        return os.sched_get_priority_max(os.SCHED_FIFO) > 0 and os.geteuid() == 0
    except (OSError, AttributeError):
        return False


def one_sample(i, writer, fd, wfd, feed, lat, spacing):
    """One sample (i < 0: warm-up, not recorded); returns how many unexpected events were drained first."""
    extra = 0

    def read(f):
        try:
            return os.read(f, 65536)
        except OSError:
            return b""

    t_begin = time.monotonic()
    for _ in range(100):  # leftovers from the previous sample (bounded)
        if not select.select([fd], [], [], 0)[0]:
            break
        data = read(fd)
        if not data:
            raise BenchError("the watched stream closed")
        if feed(data, mono_ns()):
            extra += 1
    writer.request()
    t_w = t_a = None
    wbuf = b""
    deadline = time.monotonic() + 3.0
    while t_w is None or t_a is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fd, wfd], [], [], left)
        t = mono_ns()
        if fd in r:
            data = read(fd)
            if not data:
                raise BenchError("the watched stream closed")
            if feed(data, t) and t_a is None:
                t_a = t
        if wfd in r:
            wbuf += read(wfd)
            if b"\n" in wbuf:
                t_w = int(wbuf.split(b"\n", 1)[0])
    if t_w is None:
        raise BenchError("the writer gave no stamp within 3 s")
    if i >= 0 and t_a is not None:
        lat.append(t_a - t_w)
    time.sleep(max(0.0, spacing - (time.monotonic() - t_begin)))
    return extra


def latency_beacon(ctx, debounce, samples, spacing):
    site = mktemp("beacon-bench-lat-")
    make_site(site)
    css = os.path.join(site, "style.css")
    extra = ["--debounce", str(debounce)] if debounce is not None else []
    b = Beacon(ctx.beacon, site, extra)
    w = Writer(css)
    client = None
    try:
        client = SSEClient(b.port, "/__beacon/events")
        deadline = time.monotonic() + 5
        while client.events.empty() and time.monotonic() < deadline and not client.closed:
            client.pump(0.2)
        if client.events.empty() or client.events.get_nowait()[0] != "hello":
            raise BenchError("no hello event first on /__beacon/events")
        time.sleep(0.3)

        def feed(data, t):
            client._body(data, t)
            found = False
            while not client.events.empty():
                if client.events.get_nowait()[0] == "css":
                    found = True
            return found

        return timed_samples(w, client.sock.fileno(), feed, samples, spacing)
    finally:
        if client:
            client.close()
        w.stop()
        b.stop()


def latency_inotifywait(ctx, samples, spacing):
    d = mktemp("beacon-bench-floor-")
    path = os.path.join(d, "style.css")
    with open(path, "w") as f:
        f.write("body {}\n")
    p = PROCS.start(["inotifywait", "-m", "-e", "close_write", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    w = None
    try:
        for _ in range(3):  # "Setting up watches." then "Watches established."
            line = read_line(p.stderr, 10, "'Watches established.'")
            if "established" in line:
                break
        else:
            raise BenchError(f"inotifywait: {line}")
        w = Writer(path)
        return timed_samples(w, p.stdout.fileno(), lambda data, t: b"\n" in data, samples, spacing)
    finally:
        if w:
            w.stop()
        PROCS.stop(p)


def bench_latency(ctx):
    samples = 30 if ctx.quick else 200
    spacing = 0.1
    PROCS.record(f"{ctx.beacon} serve SITE --port 0 --quiet --debounce 0   # client: GET /__beacon/events, "
                 f"{samples} samples of: writer writes+closes SITE/style.css, waits for the 'css' event")
    PROCS.record(f"{ctx.beacon} serve SITE --port 0 --quiet   # default --debounce (20 ms), same samples")
    PROCS.record("inotifywait -m -e close_write FILE   # floor: writer stamp -> line on inotifywait's stdout")
    out = {}
    log(f"latency: beacon --debounce 0, {samples} samples")
    out["beacon_debounce0"] = latency_beacon(ctx, 0, samples, spacing)
    log(f"latency: beacon default debounce, {samples} samples")
    out["beacon_default"] = latency_beacon(ctx, None, samples, spacing)
    log(f"latency: inotifywait floor, {samples} samples")
    out["inotifywait"] = latency_inotifywait(ctx, samples, spacing)
    out["debounce_ms"] = 20
    out["samples"] = samples
    out["realtime"] = realtime_available()
    ctx.results["latency"] = out
    for k in ("beacon_debounce0", "beacon_default", "inotifywait"):
        r = out[k]
        log(f"latency {k:18s} p50 {r['p50']:.3f} p95 {r['p95']:.3f} p99 {r['p99']:.3f} ms "
            f"(n {r['n']}, timeouts {r['timeouts']}, extra events {r['extra_events']})")


# --------------------------------------------------------------------------------------------
# 3. Fan-out
# --------------------------------------------------------------------------------------------
RESULT_RE = re.compile(r"(\w+)=(\S+)")


def build_load_client(tmp):
    exe = os.path.join(tmp, "sse_load")
    run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "sse_load.c")], timeout=120)
    return exe


def parse_kv(line):
    out = {}
    for k, v in RESULT_RE.findall(line):
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def run_load(exe, port, path, n, ready_mode, on_ready, connect_timeout, wait, linger, browser=False):
    src_count = max(4, math.ceil(n / 20000) + 1)
    cmd = [exe, "--port", port, "-n", n, "--path", path, "--ready", ready_mode, "--src-count", src_count,
           "--connect-timeout", connect_timeout, "--wait", wait, "--linger", linger,
           "--browser", "yes" if browser else "no"]
    p = PROCS.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(p.stdout, 10, "sse_load's LIMIT line")
        ready = None
        while ready is None:
            line = read_line(p.stdout, connect_timeout + 30, "sse_load's READY line")
            if line.startswith("READY"):
                ready = parse_kv(line)
        extra = on_ready(ready)
        line = read_line(p.stdout, wait + linger + 30, "sse_load's RESULT line")
        while not line.startswith("RESULT"):
            line = read_line(p.stdout, wait + linger + 30, "sse_load's RESULT line")
        result = parse_kv(line)
        p.wait(10)
        return ready, result, extra
    finally:
        PROCS.stop(p)


def beacon_cap_flag(binary):
    """Flags that lift Beacon's own connection cap, if this build has one."""
    r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=20)
    return ["--max-connections", "1000000"] if "--max-connections" in r.stdout + r.stderr else []


def fanout_beacon(ctx, exe, n, browser=False):
    site = mktemp("beacon-bench-fan-")
    make_site(site)
    b = Beacon(ctx.beacon, site, beacon_cap_flag(ctx.beacon))
    try:
        b.status()
        time.sleep(1.0)
        rss0 = rss_kib(b.pid)
        info = {}

        def on_ready(ready):
            time.sleep(0.5)
            info["rss1"] = rss_kib(b.pid)
            info["status_clients"] = b.status().get("clients")
            conn = http.client.HTTPConnection(LOOPBACK, b.port, timeout=30)
            conn.connect()
            stamp = mono_ns()
            body = json.dumps({"channel": "bench", "data": str(stamp)})
            conn.request("POST", "/__beacon/publish", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            info["publish_status"] = r.status
            info["publish_ms"] = (mono_ns() - stamp) / 1e6
            r.read()
            conn.close()
            return info

        ready, result, _ = run_load(exe, b.port, "/__beacon/events?channel=bench", n, "headers", on_ready,
                                    connect_timeout=180, wait=60, linger=15, browser=browser)
        # sse_load has exited, so every stream is closed: is everything noticed and freed?
        t_close = time.monotonic()
        clients_left = None
        while time.monotonic() - t_close < 15:
            clients_left = b.status().get("clients")
            if clients_left == 0:
                break
            time.sleep(0.05)
        info["freed_s"] = time.monotonic() - t_close
        info["clients_left"] = clients_left
        time.sleep(1.0)
        info["rss_after_close"] = rss_kib(b.pid)
        alive = b.proc.poll() is None
    finally:
        b.stop()
    per_conn = (info["rss1"] - rss0) / ready["headers"] if ready.get("headers") else float("nan")
    return {"server": "beacon", "n": n, "ready": ready, "result": result, "rss0_kib": rss0,
            "rss1_kib": info["rss1"], "kib_per_conn": per_conn, "status_clients": info.get("status_clients"),
            "publish_status": info.get("publish_status"), "publish_ms": info.get("publish_ms"),
            "clients_left": info.get("clients_left"), "freed_s": info.get("freed_s"),
            "rss_after_close_kib": info.get("rss_after_close"), "alive_after": alive, "extra": "",
            "browser": browser}


FLASK_APP = os.path.join(HERE, "flask_sse_app.py")


def resp_command(*args):
    """A command encoded as a RESP array of bulk strings."""
    payload = f"*{len(args)}\r\n".encode()
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        payload += b"$%d\r\n%s\r\n" % (len(a), a)
    return payload


def redis_cmd(port, *args, timeout=10.0):
    """One RESP command to redis on 127.0.0.1 (stdlib only); for commands whose reply ends in an integer."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(resp_command(*args))
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if re.search(rb"(^|\r\n):\d+\r\n$", buf) or (buf.startswith(b"-") and buf.endswith(b"\r\n")):
                break
        return buf


def numsub(port, channel):
    r = redis_cmd(port, "PUBSUB", "NUMSUB", channel)
    m = re.findall(rb":(\d+)\r\n", r)
    return int(m[-1]) if m else 0


def fanout_flask(ctx, exe, n, tmp):
    rport = free_port()
    redis = PROCS.start(["redis-server", "--port", rport, "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                         "--daemonize", "no", "--dir", tmp, "--maxclients", "20000"],
                        stdout=open(os.path.join(tmp, "redis.log"), "w"), stderr=subprocess.STDOUT)
    g = None
    try:
        wait_port(rport, 15, redis)
        gport = free_port()
        env = dict(os.environ, REDIS_URL=f"redis://{LOOPBACK}:{rport}/0")
        g = PROCS.start([sys.executable, "-m", "gunicorn", "-k", "gevent", "--bind", f"{LOOPBACK}:{gport}",
                         "--chdir", HERE, "--log-level", "warning", "flask_sse_app:app"], env=env,
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"gunicorn-{n}.log"), "w"))
        wait_port(gport, 30, g)
        http_get(gport, "/")
        time.sleep(1.0)

        def rss_all():
            return rss_kib(g.pid) + sum(rss_kib(c) for c in descendants(g.pid))

        rss0 = rss_all()
        workers = len(descendants(g.pid))
        info = {}

        def on_ready(ready):
            # Flask-SSE sends no headers before the first event: count redis subscribers instead,
            # until all are in or the count stops growing for 3 s (bounded at 60 s).
            t0 = time.monotonic()
            last, last_change = -1, t0
            while time.monotonic() - t0 < 60:
                cur = numsub(rport, "bench")
                if cur != last:
                    last, last_change = cur, time.monotonic()
                if cur >= n or time.monotonic() - last_change > 3:
                    break
                time.sleep(0.1)
            info["subscribed"] = last
            info["subscribe_s"] = last_change - t0
            info["rss1"] = rss_all()
            stamp = mono_ns()
            msg = json.dumps({"data": str(stamp), "type": "message"})  # Message.to_dict(), as sse.publish
            r = redis_cmd(rport, "PUBLISH", "bench", msg)
            info["publish_ms"] = (mono_ns() - stamp) / 1e6
            m = re.match(rb":(\d+)", r)
            info["redis_receivers"] = int(m.group(1)) if m else None
            return info

        ready, result, _ = run_load(exe, gport, "/stream?channel=bench", n, "connect", on_ready,
                                    connect_timeout=60, wait=30, linger=10)
        alive = g.poll() is None
    finally:
        if g is not None:
            PROCS.stop(g)
        PROCS.stop(redis)
    sub = info.get("subscribed") or 0
    per_conn = (info["rss1"] - rss0) / sub if sub else float("nan")
    return {"server": "flask-sse", "n": n, "ready": ready, "result": result, "rss0_kib": rss0,
            "rss1_kib": info["rss1"], "kib_per_conn": per_conn, "subscribed": sub,
            "subscribe_s": info.get("subscribe_s"), "redis_receivers": info.get("redis_receivers"),
            "publish_ms": info.get("publish_ms"), "alive_after": alive, "workers": workers,
            "extra": f"{workers} worker(s), gevent worker_connections default"}


def bench_fanout(ctx):
    tmp = mktemp("beacon-bench-fanout-")
    exe = build_load_client(tmp)
    ns = ctx.fanout_n or ([1000] if ctx.quick else [1000, 10000, 19000])
    PROCS.record(shlex.join([ctx.beacon, "serve", "SITE", "--port", "0", "--quiet", *beacon_cap_flag(ctx.beacon)]))
    PROCS.record("sse_load --port P -n N --path '/__beacon/events?channel=bench' --ready headers --src-count K "
                 "(127.0.0.2..127.0.0.K+1)   # then one POST /__beacon/publish "
                 "{\"channel\":\"bench\",\"data\":\"<CLOCK_MONOTONIC ns>\"}   "
                 "# N = 10,000 also with --browser yes (Chromium's request headers)")
    rows = []
    # Also once with the ~550-byte request a browser sends (--browser yes): memory per stream can
    # depend on the request's size (receive buffers).
    runs = [(n, False) for n in ns] + ([] if ctx.quick or ctx.fanout_n else [(10000, True)])
    for n, browser in runs:
        label = f"N={n:,}" + (" (browser request)" if browser else "")
        log(f"fan-out: beacon, {label}")
        try:
            r = fanout_beacon(ctx, exe, n, browser)
        except BenchError as e:
            log(f"fan-out beacon {label} failed: {e}")
            rows.append({"server": "beacon", "n": n, "error": str(e), "browser": browser})
            continue
        rows.append(r)
        log(f"fan-out beacon {label}: {r['result']}  RSS {r['rss0_kib']:,} -> {r['rss1_kib']:,} KiB "
            f"({r['kib_per_conn']:.1f} KiB/conn)")
    flask_ns = [1000] if ctx.quick else [1000, 1500]
    PROCS.record(f"{sys.executable} -m gunicorn -k gevent --bind 127.0.0.1:P --chdir benchmarks flask_sse_app:app  "
                 "# REDIS_URL=redis://127.0.0.1:RP/0, gunicorn defaults (1 worker, 1000 worker_connections)")
    PROCS.record("redis-server --port RP --bind 127.0.0.1 --save '' --appendonly no --daemonize no")
    PROCS.record("sse_load --port P -n N --path '/stream?channel=bench' --ready connect   # then PUBSUB NUMSUB "
                 "bench until all in or stable 3 s, then PUBLISH bench {flask-sse message, data <ns>}")
    for n in flask_ns:
        if ctx.fanout_n and n not in ctx.fanout_n and n != 1000:
            continue
        log(f"fan-out: flask-sse, N={n:,}")
        try:
            r = fanout_flask(ctx, exe, n, tmp)
        except BenchError as e:
            log(f"fan-out flask N={n} failed: {e}")
            rows.append({"server": "flask-sse", "n": n, "error": str(e)})
            continue
        rows.append(r)
        log(f"fan-out flask N={n:,}: subscribed {r['subscribed']}, {r['result']}  RSS {r['rss0_kib']:,} -> "
            f"{r['rss1_kib']:,} KiB ({r['kib_per_conn']:.1f} KiB/conn)")
    ctx.results["fanout"] = {"rows": rows}


# --------------------------------------------------------------------------------------------
# 4. Watcher start-up
# --------------------------------------------------------------------------------------------
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
        r = run(["sysctl", "-w", "fs.inotify.max_user_watches=524288"], check=False)
        with open(path) as f:
            new = int(f.read())
        if new >= needed:
            return note + f", raised to {new:,} with sysctl"
        return note + f"; raising it failed ({r.stderr.strip()}): results for > {cur:,} dirs are partial"
    return note + f"; not root, cannot raise it: results for > {cur:,} dirs are partial"


def bench_watcher(ctx):
    dirs, files = (1000, 10000) if ctx.quick else (10000, 100000)
    reps = 1 if ctx.quick else 3
    tree = mktemp("beacon-bench-tree-")
    t0 = time.monotonic()
    ndirs = make_tree(tree, dirs, files)
    log(f"watcher: made {files:,} files in {ndirs:,} dirs in {time.monotonic() - t0:.1f} s")
    limit_note = ensure_inotify_limit(ndirs + 1 + 100)
    want = ndirs + 1
    PROCS.record(f"{ctx.beacon} serve TREE --port 0 --quiet   # until the 'Serving' line and "
                 f"/__beacon/status watchedDirectories == {want:,}")
    PROCS.record("inotifywait -r -m TREE   # until 'Watches established.' on stderr")
    beacon_runs, inw_runs, base_runs = [], [], []
    small = mktemp("beacon-bench-small-")
    make_site(small)
    for rep in range(reps):
        b = Beacon(ctx.beacon, small)
        base_runs.append(b.t_line - b.t_start)
        b.stop()
    for rep in range(reps):
        b = Beacon(ctx.beacon, tree)
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
            beacon_runs.append({"line_s": t_line, "watched_s": t_all, "watched": watched, "rss_kib": rss})
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
            inw_runs.append({"established_s": t_est, "rss_kib": rss})
            log(f"watcher inotifywait run {rep + 1}: established {t_est:.3f} s, RSS {rss:,} KiB")
        finally:
            PROCS.stop(p)

    def med(rs, k):
        vals = [r[k] for r in rs if r.get(k) is not None]
        return statistics.median(vals) if vals else None

    ctx.results["watcher"] = {
        "files": files, "dirs": ndirs, "want": want, "reps": reps, "limit_note": limit_note,
        "baseline_line_s": statistics.median(base_runs),
        "beacon": {"line_s": med(beacon_runs, "line_s"), "watched_s": med(beacon_runs, "watched_s"),
                   "watched": beacon_runs[-1]["watched"] if beacon_runs else None,
                   "rss_kib": med(beacon_runs, "rss_kib")},
        "inotifywait": {"established_s": med(inw_runs, "established_s"), "rss_kib": med(inw_runs, "rss_kib")},
        "runs": {"beacon": beacon_runs, "inotifywait": inw_runs},
    }
    shutil.rmtree(tree, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# 5. Idle
# --------------------------------------------------------------------------------------------
def bench_idle(ctx):
    dur = 10 if ctx.quick else 60
    nclients = 10
    site = mktemp("beacon-bench-idle-")
    make_site(site)
    PROCS.record(f"{ctx.beacon} serve SITE --port 0 --quiet   # {nclients} clients on /__beacon/events, "
                 f"utime+stime from /proc/PID/stat over {dur} s")
    b = Beacon(ctx.beacon, site)
    clients = []
    try:
        for _ in range(nclients):
            clients.append(SSEClient(b.port, "/__beacon/events"))
        deadline = time.monotonic() + 10
        for c in clients:  # each stream's hello, within 10 s in all
            while c.events.empty() and not c.closed and time.monotonic() < deadline:
                c.pump(0.2)
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
    ctx.results["idle"] = {"duration_s": t1 - t0, "clients": nclients, "cpu_s": cpu,
                           "cpu_pct": 100 * cpu / (t1 - t0), "heartbeats": heartbeats, "closed": closed,
                           "rss0_kib": rss0, "rss1_kib": rss1, "status_clients": status.get("clients"), "hellos": hellos}
    log(f"idle: {cpu:.3f} CPU s over {t1 - t0:.1f} s ({100 * cpu / (t1 - t0):.3f} % of a core), "
        f"{heartbeats} heartbeat comments received, {closed} streams closed")


# --------------------------------------------------------------------------------------------
# 5b. Footprint: what installing and running Beacon costs
# --------------------------------------------------------------------------------------------
def smaps_kib(pid, key):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_footprint(ctx):
    """The binary's size, start to the Serving line, and idle memory with one page open (its page
    fetched, its event stream held), next to nginx serving the same page and inotifywait on the folder."""
    site = mktemp("beacon-bench-footprint-")
    make_site(site)
    stripped = os.path.join(mktemp("beacon-bench-strip-"), "beacon")
    run(["strip", "-o", stripped, ctx.beacon])
    starts = []
    for _ in range(3 if ctx.quick else 10):
        b = Beacon(ctx.beacon, site)
        starts.append(b.t_line - b.t_start)
        b.stop()
    PROCS.record(f"{ctx.beacon} serve SITE --port 0 --quiet   # GET /index.html, one SSE client; VmRSS after 1 s")
    b = Beacon(ctx.beacon, site)
    try:
        http_get(b.port, "/index.html")
        client = SSEClient(b.port, "/__beacon/events")
        deadline = time.monotonic() + 10
        while client.events.empty() and not client.closed and time.monotonic() < deadline:
            client.pump(0.2)
        time.sleep(1.0)
        beacon = {"rss_kib": rss_kib(b.pid), "anon_kib": smaps_kib(b.pid, "Anonymous"),
                  "file_kib": smaps_kib(b.pid, "Pss_File")}
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
        nginx = {"rss_kib": sum(rss_kib(p) for p in pids), "anon_kib": sum(smaps_kib(p, "Anonymous") for p in pids),
                 "processes": len(pids)}
    finally:
        PROCS.stop(n)
    w = PROCS.start(["inotifywait", "-m", "-r", site], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        read_line(w.stderr, 10, "inotifywait's 'Watches established'")
        read_line(w.stderr, 10, "inotifywait's 'Watches established'")
        inotify = {"rss_kib": rss_kib(w.pid), "anon_kib": smaps_kib(w.pid, "Anonymous")}
    finally:
        PROCS.stop(w)
    ctx.results["footprint"] = {
        "size": os.path.getsize(ctx.beacon), "stripped": os.path.getsize(stripped),
        "start_ms": sorted(1000 * x for x in starts), "beacon": beacon, "nginx": nginx, "inotifywait": inotify,
        "ldd": run(["ldd", ctx.beacon], check=False).stdout}
    log(f"footprint: {os.path.getsize(stripped) / 2**20:.1f} MiB stripped, start {pct(sorted(starts), 50) * 1000:.0f} ms, "
        f"RSS {beacon['rss_kib']:,} KiB (anonymous {beacon['anon_kib']:,}); nginx {nginx['rss_kib']:,}; "
        f"inotifywait {inotify['rss_kib']:,}")


# --------------------------------------------------------------------------------------------
# 6. Redis scale-out: three instances sharing events through Redis Streams
# --------------------------------------------------------------------------------------------
REDIS_INSTANCES = 3  # default; --redis-instances changes it
# What Beacon's publish script (RedisEventBackend.appendScript) runs inside EVAL: counted by Redis
# (commandstats and total_commands_processed) but no round trips. XRANGE is also what a Last-Event-ID
# replay sends; no client here sends Last-Event-ID, so every XRANGE in this section is the script's.
SCRIPT_COMMANDS = ("xadd", "xlen", "xrange", "xdel", "get", "set")


def redis_query(port, *args, timeout=10.0):
    """One RESP command to redis on 127.0.0.1 (stdlib only): str for a (bulk) string reply, int for an
    integer, None for a nil; raises BenchError on an error reply."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(resp_command(*args))
        f = s.makefile("rb")
        line = f.readline(1 << 16)
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
        if line.startswith(b"+"):
            return line[1:].strip().decode()
        if line.startswith(b":"):
            return int(line[1:])
        if line.startswith(b"-"):
            raise BenchError(f"redis {args[0]}: {line[1:].strip().decode(errors='replace')}")
        raise BenchError(f"unexpected redis reply to {args[0]}: {line[:100]!r}")


def redis_stats(port):
    """total_commands_processed and calls per command (INFO commandstats), stamped with time.monotonic()."""
    text = redis_query(port, "INFO", "stats", "commandstats")  # several sections: Redis >= 7.0
    total, cmds = None, {}
    for line in text.splitlines():
        if line.startswith("total_commands_processed:"):
            total = int(line.split(":", 1)[1])
        elif line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            fields = dict(kv.split("=", 1) for kv in rest.split(",") if "=" in kv)
            cmds[name[len("cmdstat_"):]] = int(fields.get("calls", 0))
    if total is None:
        raise BenchError("no total_commands_processed in INFO stats")
    return {"t": time.monotonic(), "total": total, "cmds": cmds}


def redis_stats_delta(a, b):
    """What happened between two redis_stats() snapshots, less the first snapshot's own INFO (a command
    counts once it has run, so the second snapshot includes the first INFO but not itself)."""
    cmds = {k: b["cmds"].get(k, 0) - a["cmds"].get(k, 0) for k in set(a["cmds"]) | set(b["cmds"])}
    cmds["info"] = cmds.get("info", 0) - 1
    return {"dt": b["t"] - a["t"], "total": b["total"] - a["total"] - 1,
            "cmds": {k: v for k, v in sorted(cmds.items()) if v}}


class Publisher:
    """POST /__beacon/publish on one keep-alive connection (reconnects once on a failure)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def publish(self, channel, event, data=None, fresh=False):
        """data None: a CLOCK_MONOTONIC stamp taken once connected, right before the request is sent.
        Returns (HTTP status, id or None, stamp ns, ms until the answer)."""
        if fresh:
            self.close()
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
                    self.conn.connect()
                stamp = mono_ns()
                body = json.dumps({"channel": channel, "event": event, "data": str(stamp) if data is None else data})
                self.conn.request("POST", "/__beacon/publish", body=body, headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                raw = r.read()
                ms = (mono_ns() - stamp) / 1e6
                if r.will_close:
                    self.close()
                try:
                    ident = json.loads(raw).get("id")
                except (ValueError, AttributeError):
                    ident = None
                return r.status, ident, stamp, ms
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise


def event_id_key(text):
    """'<ms>-<seq>' as a tuple that orders like Redis stream ids."""
    try:
        a, b = str(text).split("-", 1)
        return int(a), int(b)
    except ValueError:
        return -1, -1


def wait_followers(beacons, last_id, timeout=60.0):
    """Until every instance's /__beacon/status lastEventId has reached last_id (its follower read it)."""
    deadline = time.monotonic() + timeout
    want = event_id_key(last_id)
    while time.monotonic() < deadline:
        if all(event_id_key(b.status().get("lastEventId")) >= want for b in beacons):
            return True
        time.sleep(0.05)
    return False


def read_prefixed(p, prefix, timeout, what):
    """The next line of p's stdout that starts with `prefix`, parsed (key=value pairs)."""
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(p.stdout, max(0.1, deadline - time.monotonic()), what)
        if line.startswith(prefix):
            return parse_kv(line)


def held_counts(loads, timeout=30.0):
    for p in loads:
        p.stdin.write(b"COUNT\n")
        p.stdin.flush()
    return [read_prefixed(p, "HELD", timeout, "sse_load's HELD line") for p in loads]


def merged_round(dumps, k, ready_total):
    """Publish -> arrival over every stream of every instance for round k (1-based), from the --dump files."""
    lat = sorted(v / 1e6 for d in dumps for v in d.get(k, []))
    n = len(lat)

    def at(rank):  # rank is 1-based; None if that many never arrived
        return lat[rank - 1] if 1 <= rank <= n else None

    return {"received": n, "lost": max(0, ready_total - n), "ready": ready_total,
            "p50": pct(lat, 50) if lat else None, "p99": pct(lat, 99) if lat else None,
            "max": lat[-1] if lat else None, "min": lat[0] if lat else None,
            "t50": at(math.ceil(0.5 * ready_total)), "t99": at(math.ceil(0.99 * ready_total)),
            "t100": at(ready_total) if ready_total else None}


def read_dump(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, v = line.split()
                out.setdefault(int(k), []).append(int(v))
    except (OSError, ValueError):
        pass
    return out


def publish_phase(pub, beacons, rport, k, spacing, tag):
    """k publishes through one instance, one after the other (each waits for its 202), start-to-start at
    least `spacing` s apart; Redis commands counted from before the first until every follower read the last."""
    s0 = redis_stats(rport)
    t0 = time.monotonic()
    codes, ms, last_id = {}, [], None
    for i in range(k):
        t_i = time.monotonic()
        status, ident, _, dt = pub.publish("bench", "load", f"{tag}{i}")
        codes[status] = codes.get(status, 0) + 1
        ms.append(dt)
        if status == 202 and ident:
            last_id = ident
        if spacing:
            time.sleep(max(0.0, spacing - (time.monotonic() - t_i)))
    t_pub = time.monotonic() - t0
    caught_up = wait_followers(beacons, last_id) if last_id else False
    s1 = redis_stats(rport)
    d = redis_stats_delta(s0, s1)
    ms.sort()
    return {"k": k, "spacing_ms": spacing * 1000, "codes": codes, "publish_s": t_pub, "window_s": d["dt"],
            "caught_up": caught_up, "total": d["total"], "cmds": d["cmds"],
            "http_p50_ms": pct(ms, 50), "http_p99_ms": pct(ms, 99), "http_max_ms": ms[-1] if ms else None}


def bench_redis(ctx):
    ctx.results["redis"] = redis_fanout(ctx, ctx.redis_instances or REDIS_INSTANCES,
                                        ctx.redis_n or (300 if ctx.quick else 10000))


# Past one process: the machine caps open files at 20,000 per process, so 50,000 and 100,000
# streams are held the way a deployment would hold them, by several instances on one Redis.
SCALE_RUNS = [(3, 17000), (6, 17000)]


def bench_scale(ctx):
    runs = [(3, 1000)] if ctx.quick else SCALE_RUNS
    ctx.results["scale"] = {"runs": [redis_fanout(ctx, i, n, measure_commands=False) for i, n in runs]}


def redis_fanout(ctx, instances, n_per, measure_commands=True):
    """n_per streams on each of `instances` Beacons sharing one Redis; stamped publishes through
    instance 0, timed on every stream; then, with measure_commands, Redis commands per publish."""
    rounds = 3 if ctx.quick else 5
    k_pub = 50 if ctx.quick else 200
    spacing = 0.05
    idle_s = 5.5 if ctx.quick else 11.0
    connect_timeout, wait, linger, hold = 180, 120, 15, 900
    tmp = mktemp("beacon-bench-redis-")
    exe = build_load_client(tmp)
    rport = free_port()
    redis_cmdline = ["redis-server", "--port", rport, "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--dir", tmp]
    redis = PROCS.start(redis_cmdline, stdout=open(os.path.join(tmp, "redis.log"), "w"), stderr=subprocess.STDOUT)
    wait_port(rport, 15, redis)
    url = f"redis://{LOOPBACK}:{rport}"
    prefix = "beaconbench:"
    cap = str(max(100000, 2 * n_per))
    site = mktemp("beacon-bench-redis-site-")
    make_site(site)
    logdir = mktemp("beacon-bench-redis-log-")
    PROCS.record(shlex.join([ctx.beacon, "serve", "SITE", "--port", "0", "--quiet", "--redis", "redis://127.0.0.1:RP",
                             "--redis-prefix", prefix, "--max-connections", cap])
                 + f"   # x{instances}, the same URL and prefix")
    beacons = [Beacon(ctx.beacon, site, ["--redis", url, "--redis-prefix", prefix, "--max-connections", cap],
                      logdir=logdir) for _ in range(instances)]
    for b in beacons:
        b.status()
    time.sleep(1.0)
    rss0 = [rss_kib(b.pid) for b in beacons]
    out = {"n_per": n_per, "instances": instances, "rounds_asked": rounds, "k": k_pub, "idle_s": idle_s,
           "redis_version": (redis_query(rport, "INFO", "server") or "").split("redis_version:")[-1].split()[0]}

    # One sse_load per instance (each process holds at most 20k open files), all started at once.
    src_count = max(4, math.ceil(n_per / 20000) + 1)
    loads, dumps = [], []
    PROCS.record(f"sse_load --port P_i -n {n_per} --path '/__beacon/events?channel=bench' --ready headers "
                 f"--src-first 2+10i --src-count {src_count} --connect-timeout {connect_timeout} --wait {wait} "
                 f"--linger {linger} --rounds {rounds} --dump FILE_i --hold {hold}   # one per instance, in parallel")
    for i, b in enumerate(beacons):
        dump = os.path.join(tmp, f"lat-{i}.txt")
        dumps.append(dump)
        cmd = [exe, "--port", b.port, "-n", n_per, "--path", "/__beacon/events?channel=bench", "--ready", "headers",
               "--src-first", 2 + 10 * i, "--src-count", src_count, "--connect-timeout", connect_timeout,
               "--wait", wait, "--linger", linger, "--rounds", rounds, "--dump", dump, "--hold", hold]
        loads.append(PROCS.start(cmd, record=False, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(tmp, f"sse_load-{i}.log"), "w")))
    pub = Publisher(beacons[0].port)
    try:
        t_conn = time.monotonic()
        ready = [read_prefixed(p, "READY", connect_timeout + 30, "sse_load's READY line") for p in loads]
        out["ready"] = ready
        out["ready_s"] = time.monotonic() - t_conn
        held = sum(r.get("headers", 0) for r in ready)
        log(f"redis: {held:,} of {n_per * instances:,} streams ready after {out['ready_s']:.1f} s: {ready}")
        time.sleep(1.0)
        out["status_clients"] = [b.status().get("clients") for b in beacons]
        out["rss0_kib"], out["rss1_kib"] = rss0, [rss_kib(b.pid) for b in beacons]

        # 1. Rounds: one stamped publish through instance 0, timed on every stream of every instance.
        pubs = []
        for r in range(rounds):
            time.sleep(1.0)
            status, ident, stamp, ms = pub.publish("bench", "stamp", fresh=True)
            if status != 202:
                raise BenchError(f"publish answered {status}")
            res = [read_prefixed(p, "RESULT", wait + linger + 30, "sse_load's RESULT line") for p in loads]
            pubs.append({"status": status, "id": ident, "ms": ms, "per_instance": res})
            log(f"redis round {r + 1}/{rounds}: publish {status} {ident} in {ms:.1f} ms; per instance t100 "
                f"{[x.get('t100_ms') for x in res]} ms, lost {[x.get('lost') for x in res]}")

        # 2. Redis commands per publish, with every stream still open and reading.
        phases = []
        if measure_commands:
            time.sleep(1.0)
            s0 = redis_stats(rport)
            time.sleep(idle_s)
            d = redis_stats_delta(s0, redis_stats(rport))
            out["idle"] = {"window_s": d["dt"], "total": d["total"], "cmds": d["cmds"]}
            log(f"redis idle {d['dt']:.1f} s: {d['total']} commands {d['cmds']}")
        for name, sp, tag in ((("back-to-back", 0.0, "b"), (f"paced {spacing * 1000:.0f} ms", spacing, "p"))
                              if measure_commands else ()):
            ph = publish_phase(pub, beacons, rport, k_pub, sp, tag)
            ph["name"] = name
            phases.append(ph)
            log(f"redis {name}: {k_pub} publishes in {ph['publish_s']:.2f} s (HTTP {ph['codes']}, p50 "
                f"{ph['http_p50_ms']:.1f} ms), followers caught up {ph['caught_up']}; {ph['total']} commands in "
                f"{ph['window_s']:.2f} s: {ph['cmds']}")
        out["phases"] = phases
        pub.close()

        # Every stream should get every one of those events: count them (bounded: stops when no
        # stream makes progress for 10 s, at most 300 s).
        expect = [r.get("headers", 0) * k_pub * len(phases) for r in ready]
        t_drain, last, last_change = time.monotonic(), None, time.monotonic()
        while True:
            hc = held_counts(loads)
            got = [h.get("events", 0) for h in hc]
            if got != last:
                last, last_change = got, time.monotonic()
            if all(g >= e for g, e in zip(got, expect)) or time.monotonic() - last_change > 10 \
                    or time.monotonic() - t_drain > 300:
                break
            time.sleep(0.5)
        out["drain_s"] = time.monotonic() - t_drain
        for p in loads:
            p.stdin.close()
        final = [read_prefixed(p, "HELD", 60, "sse_load's final HELD line") for p in loads]
        for p in loads:
            p.wait(30)
        out["held"] = final
        out["held_expected"] = expect
        # Every stream is closed now: does every instance notice?
        t_close = time.monotonic()
        left = None
        while time.monotonic() - t_close < 20:
            left = [b.status().get("clients") for b in beacons]
            if all(c == 0 for c in left):
                break
            time.sleep(0.1)
        out["clients_left"], out["freed_s"] = left, time.monotonic() - t_close
        out["alive"] = [b.proc.poll() is None for b in beacons]
    finally:
        pub.close()
        for p in loads:
            PROCS.stop(p)
        for b in beacons:
            b.stop()
    # Merge the three load clients' raw latencies per round.
    parsed = [read_dump(d) for d in dumps]
    ready_total = sum(r.get("headers", 0) for r in out["ready"])
    rows = []
    for r, info in enumerate(pubs, 1):
        m = merged_round(parsed, r, ready_total)
        m.update(round=r, publish_ms=info["ms"], id=info["id"],
                 per_instance_t100=[x.get("t100_ms") for x in info["per_instance"]],
                 per_instance_lost=[x.get("lost") for x in info["per_instance"]])
        rows.append(m)
    out["rounds"] = rows
    order = sorted(rows, key=lambda m: (m["lost"] > 0, m["t100"] if m["t100"] is not None else m["max"] or 0))
    out["median_round"] = order[len(order) // 2]["round"] if order else None
    # Beacon's own complaints, if any (it runs with --quiet: warnings and errors only).
    notes = []
    for i, b in enumerate(beacons):
        try:
            with open(b.logpath, errors="replace") as f:
                lines = [l.rstrip() for l in f if l.strip()]
        except OSError:
            lines = []
        if lines:
            notes.append(f"instance {i}: {len(lines)} log line(s), e.g. {lines[0][:300]!r}")
    out["log_notes"] = notes
    mr = rows[out["median_round"] - 1] if rows else None
    if mr:
        log(f"redis median round {mr['round']}: {mr['received']:,}/{ready_total:,} received, lost {mr['lost']}, "
            f"p50 {fmt(mr['p50'], 3)} p99 {fmt(mr['p99'], 3)} 100% {fmt(mr['t100'], 3)} ms")
    for n in notes:
        log(f"redis: beacon log: {n}")
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1).strip() if m else "?"
        with open("/etc/os-release") as f:
            m = re.search(r'PRETTY_NAME="?([^"\n]*)', f.read())
            info["os"] = m.group(1) if m else "?"
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            info["loadavg"] = " ".join(f.read().split()[:3])
    except OSError:
        info["loadavg"] = "?"
    import resource
    info["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)
    return info


def versions(ctx, sections):
    v = {}

    def first_line(cmd, stream="stdout"):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            out = (r.stdout if stream == "stdout" else r.stderr) or r.stdout or r.stderr
            return out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    v["beacon"] = first_line([ctx.beacon, "--version"])
    try:
        built = datetime.datetime.fromtimestamp(os.path.getmtime(ctx.beacon), datetime.timezone.utc)
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        ctx.build_note = (f"`{ctx.beacon}`, built {built.strftime('%Y-%m-%d %H:%M UTC')}; repository at {head or '?'}"
                          f"{' with uncommitted changes under Sources/' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        ctx.build_note = f"`{ctx.beacon}`"
    if "static" in sections:
        v["nginx"] = first_line([nginx_bin() or "nginx", "-v"], "stderr")
        v["wrk"] = first_line(["wrk", "-v"])
    if "latency" in sections or "watcher" in sections:
        v["inotifywait"] = first_line(["inotifywait", "--help"])
    if "fanout" in sections or "redis" in sections or "scale" in sections:
        v["redis"] = first_line(["redis-server", "--version"])
        v["gcc"] = first_line(["gcc", "--version"])
    v["python"] = sys.version.split()[0]
    mods = (["livereload"] if "static" in sections else []) + \
        (["flask", "flask_sse", "gunicorn", "gevent", "redis"] if "fanout" in sections else [])
    for mod in mods:
        dist = {"flask_sse": "flask-sse"}.get(mod, mod)
        r = subprocess.run([sys.executable, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                           capture_output=True, text=True)
        v[dist] = r.stdout.strip() or "?"
    return v


def table_rows(ctx):
    """(section, case, figure) rows for the terminal table."""
    R = ctx.results
    rows = []
    if "static" in R:
        for r in R["static"]["rows"]:
            rows.append(("static", f"{r['file']} {r['server']}",
                         f"{r['rps']:>10,.0f} req/s  {r['ratio']:.2f}x nginx"
                         + (f"  {r['us_per_req']:6.1f} us CPU/req ({r['cpu_ratio']:.2f}x nginx)"
                            if r.get("us_per_req") and r.get("cpu_ratio") else "")
                         + (f"  non-2xx {r['non2xx']}" if r["non2xx"] else "")))
    if "latency" in R:
        L = R["latency"]
        for k, name in (("beacon_debounce0", "beacon --debounce 0"), ("beacon_default", "beacon default (20 ms)"),
                        ("inotifywait", "inotifywait floor")):
            r = L[k]
            rows.append(("latency", name, f"p50 {r['p50']:.3f}  p95 {r['p95']:.3f}  p99 {r['p99']:.3f} ms"
                         f"  (n={r['n']}, timeouts {r['timeouts']})"))
        d = L["beacon_default"]["p50"] - L["beacon_debounce0"]["p50"]
        rows.append(("latency", "debounce cost (p50 default - p50 debounce 0)", f"{d:.3f} ms"))
    if "fanout" in R:
        for r in R["fanout"]["rows"]:
            if "error" in r:
                rows.append(("fanout", f"{r['server']} N={r['n']:,}", "FAILED: " + r["error"][:80]))
                continue
            res = r["result"]
            held = res.get("headers") if r["server"] == "beacon" else r.get("subscribed")
            rows.append(("fanout", f"{r['server']} N={r['n']:,}" + (" browser request" if r.get("browser") else ""),
                         f"held {held:,}  recv {res.get('received', 0):,}  lost {res.get('lost', 0):,}  "
                         f"p50 {res.get('p50_ms')}  p99 {res.get('p99_ms')}  100% {res.get('t100_ms')} ms  "
                         f"{r['kib_per_conn']:.1f} KiB/conn"))
    if "watcher" in R:
        W = R["watcher"]
        b, i = W["beacon"], W["inotifywait"]
        rows.append(("watcher", f"beacon {W['files']:,} files / {W['dirs']:,} dirs",
                     f"line {b['line_s']:.3f} s, all {b['watched']:,} watched {b['watched_s']:.3f} s, "
                     f"RSS {b['rss_kib'] / 1024:.1f} MiB"))
        rows.append(("watcher", "inotifywait -r -m",
                     f"established {i['established_s']:.3f} s, RSS {i['rss_kib'] / 1024:.1f} MiB"))
    if "idle" in R:
        I = R["idle"]
        rows.append(("idle", f"beacon, {I['clients']} SSE clients, {I['duration_s']:.0f} s",
                     f"{I['cpu_s']:.3f} CPU s ({I['cpu_pct']:.3f} % of a core), {I['heartbeats']} heartbeats"))
    if "redis" in R:
        X = R["redis"]
        for m in X["rounds"]:
            rows.append(("redis", f"round {m['round']}{' (median)' if m['round'] == X['median_round'] else ''}, "
                         f"{m['ready']:,} streams on {X['instances']} instances",
                         f"recv {m['received']:,}  lost {m['lost']:,}  p50 {fmt(m['p50'], 3)}  p99 {fmt(m['p99'], 3)}  "
                         f"100% {fmt(m['t100'], 3)} ms"))
        for ph in X["phases"]:
            inner = sum(ph["cmds"].get(x, 0) for x in SCRIPT_COMMANDS)
            rows.append(("redis", f"Redis commands per publish, {ph['name']}",
                         f"{ph['total'] / ph['k']:.2f} commands, {(ph['total'] - inner) / ph['k']:.2f} round trips; "
                         + ", ".join(f"{n} {v / ph['k']:.2f}" for n, v in ph["cmds"].items())))
    if "scale" in R:
        for X in R["scale"]["runs"]:
            m = scale_summary(X)
            rows.append(("scale", f"{m['held']:,} streams on {X['instances']} instances through Redis",
                         f"lost {m['lost']:,} over {m['rounds']} rounds, to 100% median {fmt(m['t100_median'], 1)} ms "
                         f"(rounds {m['t100_range']}), {m['kib']:.1f} KiB per stream"))
    return rows


def scale_summary(X):
    """One line's worth of a delivery-only scale-out run: held, lost, time to 100 % over rounds."""
    t100 = sorted(m["t100"] for m in X["rounds"] if m["t100"] is not None)
    held = sum(r.get("headers", 0) for r in X["ready"])
    grown = sum(b - a for a, b in zip(X["rss0_kib"], X["rss1_kib"]))
    return {
        "held": held, "asked": X["n_per"] * X["instances"], "rounds": len(X["rounds"]),
        "lost": sum(m["lost"] for m in X["rounds"]),
        "t100_median": statistics.median(t100) if t100 else None,
        "t100_range": f"{t100[0]:.0f}–{t100[-1]:.0f} ms" if t100 else "n/a",
        "under_1s": sum(1 for v in t100 if v < 1000),
        "p99_median": statistics.median(p99s) if (p99s := [m["p99"] for m in X["rounds"] if m["p99"] is not None])
        else None,
        "kib": grown / held if held else float("nan"),
    }


def print_table(rows):
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    line = "-" * (w1 + w2 + 70)
    print(line)
    print(f"{'section':{w1}}  {'case':{w2}}  figure")
    print(line)
    for s, c, f in rows:
        print(f"{s:{w1}}  {c:{w2}}  {f}")
    print(line)


def write_results(ctx, sections, started, elapsed):
    R = ctx.results
    m = ctx.machine
    v = ctx.versions
    out = []
    out.append("# Beacon benchmark results\n")
    out.append(f"Written by `benchmarks/run.py{' --quick' if ctx.quick else ''}"
               f"{' --only ' + ','.join(sections) if sections != SECTIONS else ''}` on "
               f"{started.strftime('%Y-%m-%d %H:%M UTC')} ({elapsed / 60:.1f} min). "
               f"Mode: **{'quick' if ctx.quick else 'full'}**. Everything ran on this one machine, over loopback; "
               "the load generators share its cores with the servers, so read the ratios measured side by side "
               "rather than the absolute figures.\n")
    out.append("## Machine\n")
    out.append(f"- {m.get('nproc')} CPUs ({m.get('cpu', '?')}), {m.get('mem', '?')} memory, kernel "
               f"{m.get('kernel')}, {m.get('os', '?')}")
    out.append(f"- beacon binary: {ctx.build_note}")
    out.append(f"- open files per process: soft {m['nofile'][0]:,}, hard {m['nofile'][1]:,}")
    out.append(f"- load average (1, 5, 15 min) at the start: {m.get('loadavg')}; at the end: {ctx.loadavg_end} "
               "(anything above ~0.2 means other work shared the 2 cores during the run)")
    out.append("- versions: " + "; ".join(f"{k} `{val}`" for k, val in v.items()) + "\n")

    if "static" in R:
        S = R["static"]
        out.append("## 1. Static files\n")
        out.append(f"`wrk -t2 -c64 -d{S['duration_s']}s` (keep-alive) after a 1 s warm-up, per file and server; "
                   f"{S['rounds']} round(s), each measuring every file on the three servers back to back (all three "
                   "running), median req/s and the range over rounds. "
                   "Beacon injects its client script into HTML, so its HTML bodies are slightly larger "
                   "(python-livereload injects its own script too); nginx serves them byte for byte with sendfile. "
                   "Server CPU per request is the server's user + system CPU time (all its processes: nginx's "
                   "workers too) over the wrk run divided by the requests wrk completed, median over rounds: "
                   "the steadier figure here, where wrk competes with the server for the same 2 cores (a server "
                   "that needs less CPU per request leaves more to the load generator).\n")
        out.append("| file | server | req/s (median) | range | × nginx | server CPU µs/request | CPU × nginx | body bytes | mean latency | non-2xx | socket errors |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in S["rows"]:
            cpu = f"{r['us_per_req']:.1f}" if r.get("us_per_req") else "—"
            cpu_ratio = f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "—"
            out.append(f"| {r['file']} | {r['server']} | {r['rps']:,.0f} | {r['rps_min']:,.0f}–{r['rps_max']:,.0f} | "
                       f"{r['ratio']:.2f} | {cpu} | {cpu_ratio} | {r['bytes']:,} | "
                       f"{r['latency_avg']} | {r['non2xx']} | {r['errors'] or '—'} |")
        if S.get("paired"):
            out.append("")
            out.append("Round by round (each round's three servers measured back to back, so load from outside "
                       "shifts a round's figures alike), Beacon ÷ nginx:\n")
            def ratios(xs):
                return ", ".join(f"{x:.2f}" if x else "—" for x in xs)
            for label, pr in S["paired"].items():
                out.append(f"- {label}: req/s {ratios(pr['rps'])}; CPU per request {ratios(pr['cpu'])}")
        out.append("")
    if "latency" in R:
        L = R["latency"]
        out.append("## 2. File change → SSE event latency\n")
        out.append(f"{L['samples']} samples each, ≥100 ms apart. A separate writer process writes and closes "
                   "`style.css` and stamps CLOCK_MONOTONIC right after `close()`; a raw-socket client on "
                   "`GET /__beacon/events` stamps the arrival of the `css` event (the recv that completes it). "
                   "The floor is `inotifywait -m -e close_write FILE`: writer stamp → its line on stdout.\n")
        out.append("| case | p50 ms | p95 ms | p99 ms | min ms | max ms | samples | timeouts | extra events | < 0 |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k, name in (("beacon_debounce0", "Beacon `--debounce 0`"), ("beacon_default", "Beacon default (20 ms)"),
                        ("inotifywait", "inotifywait (floor)")):
            r = L[k]
            out.append(f"| {name} | {r['p50']:.3f} | {r['p95']:.3f} | {r['p99']:.3f} | {r['min']:.3f} | "
                       f"{r['max']:.3f} | {r['n']} | {r['timeouts']} | {r['extra_events']} | {r['negative']} |")
        d0, dd, fl = L["beacon_debounce0"], L["beacon_default"], L["inotifywait"]
        dd_below = dd.get("below_20ms", "?")
        out.append("")
        rt = "SCHED_FIFO (priority 10)" if L.get("realtime") else "normal priority (not root: no SCHED_FIFO)"
        out.append(f"- {WARMUP_SAMPLES} unmeasured warm-up samples run first in each case. The writer and the "
                   f"measuring client run at {rt} while measuring; the servers (Beacon, inotifywait) at normal "
                   "priority. Without that, on this busy 2-core machine the writer was often descheduled between "
                   "`close()` and `clock_gettime`, stamping up to ~5 ms late (negative latencies, and samples "
                   "below the 20 ms debounce). \"< 0\" counts samples whose event arrived before the writer's "
                   f"stamp; with the default debounce, {dd_below} sample(s) came in under 20 ms.")
        out.append(f"- Beacon's own overhead over the inotify floor (debounce 0): p50 {d0['p50'] - fl['p50']:.3f} ms, "
                   f"p99 {d0['p99'] - fl['p99']:.3f} ms.")
        out.append(f"- The default 20 ms debounce adds p50 {dd['p50'] - d0['p50']:.3f} ms, "
                   f"p99 {dd['p99'] - d0['p99']:.3f} ms (the quiet window itself is 20 ms).\n")
    if "fanout" in R:
        out.append("## 3. SSE fan-out: one publish to N open streams\n")
        out.append("`benchmarks/sse_load.c` (epoll, gcc -O2) opens N streams from 127.0.0.2.. round-robin, waits until "
                   "all are ready, then one event carrying a CLOCK_MONOTONIC stamp is published; per stream it records "
                   "arrival − stamp. Beacon: ready = response headers received, publish = one "
                   "`POST /__beacon/publish {\"channel\":\"bench\",\"data\":\"<ns>\"}`. Flask-SSE sends no headers "
                   "before the first event, so there ready = TCP connected, then redis `PUBSUB NUMSUB` is polled "
                   "until every stream is subscribed or the count is stable for 3 s, and the event is one redis "
                   "`PUBLISH` of a Flask-SSE message (what `sse.publish` sends). Memory = (RSS after all ready − "
                   "RSS before) / streams held (Flask: gunicorn master + workers, redis not counted).\n")
        out.append("| server | N asked | held | received | lost | p50 ms | p99 ms | max ms | to 50% | to 99% | to 100% "
                   "| ready after | RSS before → after | KiB/conn | notes |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
        for r in R["fanout"]["rows"]:
            if "error" in r:
                out.append(f"| {r['server']} | {r['n']:,} | failed: {r['error']} |||||||||||||")
                continue
            res, rd = r["result"], r["ready"]
            if r["server"] == "beacon":
                held = res.get("headers", 0)
                notes = (("browser's request headers (`--browser yes`, ~550 B); " if r.get("browser") else "")
                         + f"status clients {r.get('status_clients')}, publish {r.get('publish_status')} in "
                         f"{r.get('publish_ms', 0):.1f} ms; closed {res.get('closed')}, failed {res.get('failed')}; "
                         f"after the client exits: {r.get('clients_left')} clients left after "
                         f"{r.get('freed_s', 0):.2f} s, RSS {r.get('rss_after_close_kib', 0) / 1024:.1f} MiB")
                ready_after = f"{rd.get('elapsed_ms', 0) / 1000:.1f} s"
            else:
                held = r.get("subscribed", 0)
                notes = (f"{r.get('extra')}; TCP connected {res.get('connected')}, redis subscribers "
                         f"{held}, PUBLISH receivers {r.get('redis_receivers')}; closed {res.get('closed')}")
                ready_after = f"{rd.get('elapsed_ms', 0) / 1000 + (r.get('subscribe_s') or 0):.1f} s"
            out.append(f"| {r['server']} | {r['n']:,} | {held:,} | {res.get('received', 0):,} | {res.get('lost', 0):,} | "
                       f"{res.get('p50_ms')} | {res.get('p99_ms')} | {res.get('max_ms')} | {res.get('t50_ms')} | "
                       f"{res.get('t99_ms')} | {res.get('t100_ms')} | {ready_after} | "
                       f"{r['rss0_kib'] / 1024:.1f} → {r['rss1_kib'] / 1024:.1f} MiB | {r['kib_per_conn']:.1f} | {notes} |")
        b1 = [r for r in R["fanout"]["rows"]
              if r.get("server") == "beacon" and r.get("n") == 1000 and not r.get("browser") and "error" not in r]
        f1 = [r for r in R["fanout"]["rows"] if r.get("server") == "flask-sse" and r.get("n") == 1000 and "error" not in r]
        if b1 and f1:
            bt, ft = b1[0]["result"].get("t100_ms"), f1[0]["result"].get("t100_ms")
            out.append("")
            if isinstance(bt, (int, float)) and isinstance(ft, (int, float)) and bt > 0:
                out.append(f"- N = 1,000: publish → 100 % is {ft / bt:.1f}× faster on Beacon "
                           f"({bt:.2f} ms vs {ft:.2f} ms).")
            else:
                out.append(f"- N = 1,000: publish → 100 %: Beacon {bt} ms, Flask-SSE {ft} ms "
                           "(NA: not every held stream got the event).")
            if b1[0]["kib_per_conn"] > 0:
                out.append(f"- Memory per stream: Beacon {b1[0]['kib_per_conn']:.1f} KiB, Flask-SSE "
                           f"{f1[0]['kib_per_conn']:.1f} KiB ({f1[0]['kib_per_conn'] / b1[0]['kib_per_conn']:.1f}×).")
        out.append("")
    if "watcher" in R:
        W = R["watcher"]
        b, i = W["beacon"], W["inotifywait"]
        out.append("## 4. Watching a large tree\n")
        out.append(f"{W['files']:,} files in {W['dirs']:,} directories under /tmp (page cache warm), median of "
                   f"{W['reps']} run(s). Beacon: time from spawning `beacon serve TREE --port 0` to its `Serving` line, "
                   f"and until `/__beacon/status` shows `watchedDirectories` = {W['want']:,}. inotifywait: time to "
                   f"`Watches established.` on stderr. {W['limit_note']}.\n")
        out.append("| watcher | ready line s | all watched s | dirs watched | RSS MiB |")
        out.append("|---|---:|---:|---:|---:|")
        out.append(f"| Beacon | {b['line_s']:.3f} | {b['watched_s']:.3f} | {b['watched']:,} | {b['rss_kib'] / 1024:.1f} |")
        out.append(f"| inotifywait -r -m | {i['established_s']:.3f} | {i['established_s']:.3f} | {W['want']:,} | "
                   f"{i['rss_kib'] / 1024:.1f} |")
        out.append(f"| Beacon on a 5-file site (start-up baseline) | {W['baseline_line_s']:.3f} | | 1 | |")
        out.append("")
        out.append(f"- Beacon's start-up less its baseline: {b['watched_s'] - W['baseline_line_s']:.3f} s for "
                   f"{W['want']:,} directories ({(b['watched_s'] - W['baseline_line_s']) / W['want'] * 1e6:.1f} µs "
                   f"per directory; inotifywait {i['established_s'] / W['want'] * 1e6:.1f} µs).")
        out.append(f"- Beacon / inotifywait start-up: {b['watched_s'] / i['established_s']:.2f}×; "
                   f"RSS {b['rss_kib'] / max(1, i['rss_kib']):.1f}×.")
        out.append("- Runs: " + json.dumps(W["runs"]) + "\n")
    if "idle" in R:
        I = R["idle"]
        out.append("## 5. Idle cost\n")
        out.append(f"Beacon with the default heartbeat (15 s), {I['clients']} SSE clients connected and nothing "
                   f"changing, for {I['duration_s']:.1f} s: utime+stime from `/proc/PID/stat`.\n")
        out.append("| CPU seconds | % of one core | heartbeat comments received (all clients) | streams closed | "
                   "RSS KiB before → after | status clients |")
        out.append("|---:|---:|---:|---:|---|---:|")
        out.append(f"| {I['cpu_s']:.3f} | {I['cpu_pct']:.3f} | {I['heartbeats']} | {I['closed']} | "
                   f"{I['rss0_kib']:,} → {I['rss1_kib']:,} | {I['status_clients']} |\n")
        out.append(f"- {I['hellos']} of {I['clients']} streams got their `hello` before the measurement started; "
                   "CPU time is counted in clock ticks (10 ms each).\n")
    if "footprint" in R:
        F = R["footprint"]
        B, N, I = F["beacon"], F["nginx"], F["inotifywait"]
        toolchain = [line.strip() for line in F["ldd"].splitlines() if "swift" in line.lower()]
        out.append("## 5b. Footprint\n")
        out.append(f"The binary: {F['size'] / 2**20:.1f} MiB as built, {F['stripped'] / 2**20:.1f} MiB stripped (as "
                   "`make install` and the .deb ship it); libraries from the Swift toolchain in `ldd`: "
                   f"{', '.join(toolchain) if toolchain else 'none'}. Start to the `Serving` line, "
                   f"{len(F['start_ms'])} starts: median {pct(F['start_ms'], 50):.0f} ms "
                   f"({F['start_ms'][0]:.0f}–{F['start_ms'][-1]:.0f}).\n")
        out.append("Idle memory with one page open (its page fetched, its event stream held), next to nginx serving "
                   "the same page (master and workers) and `inotifywait -m -r` on the same folder. Anonymous is the "
                   "memory that is the process's own; the rest of RSS is clean pages of the executable and libraries, "
                   "shared with the page cache.\n")
        out.append("| process | RSS KiB | anonymous KiB |")
        out.append("|---|---:|---:|")
        out.append(f"| beacon | {B['rss_kib']:,} | {B['anon_kib']:,} |")
        out.append(f"| nginx ({N['processes']} processes) | {N['rss_kib']:,} | {N['anon_kib']:,} |")
        out.append(f"| inotifywait | {I['rss_kib']:,} | {I['anon_kib']:,} |\n")
    if "redis" in R:
        X = R["redis"]
        ready_total = sum(r.get("headers", 0) for r in X["ready"])
        out.append(f"## 7. Redis scale-out: {X['instances']} instances sharing one Redis\n")
        out.append(f"redis-server {X['redis_version']} (`--save '' --appendonly no`, its own temporary folder) and "
                   f"{X['instances']} `beacon serve SITE --redis redis://127.0.0.1:RP --redis-prefix beaconbench: "
                   "--max-connections …` on free ports; one `sse_load` process per instance (each process may hold "
                   f"20,000 open files, so one client cannot hold all of them) opens {X['n_per']:,} streams on "
                   "`GET /__beacon/events?channel=bench` of its instance, all at once. Once every stream has "
                   "its headers, each round is one `POST /__beacon/publish {\"channel\":\"bench\",\"data\":\"<ns>\"}` "
                   "to instance 0 only, on a fresh connection, stamped with CLOCK_MONOTONIC right before the request; "
                   "the event goes publish → Redis (one EVAL) → each instance's follower (XREAD) → its streams. The "
                   "clients' raw per-stream latencies are merged: p50/p99/max over the streams that got the "
                   "event, \"to 100 %\" = when the last of all the streams held had it (n/a if any lost it). A round "
                   "ends when every stream has it or 15 s after its first arrival; rounds are ≥1 s apart.\n")
        out.append("| round | streams held | received | lost | p50 ms | p99 ms | max ms | to 99 % | to 100 % | "
                   "to 100 % per instance (0 = publisher) | publish 202 ms |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for m in X["rounds"]:
            med = " (median)" if m["round"] == X["median_round"] else ""
            per = " / ".join(str(v) for v in m["per_instance_t100"])
            out.append(f"| {m['round']}{med} | {m['ready']:,} | {m['received']:,} | {m['lost']:,} | {fmt(m['p50'], 3)} | "
                       f"{fmt(m['p99'], 3)} | {fmt(m['max'], 3)} | {fmt(m['t99'], 3)} | {fmt(m['t100'], 3)} | {per} | "
                       f"{m['publish_ms']:.1f} |")
        out.append("")
        if X["rounds"]:
            mr = X["rounds"][X["median_round"] - 1]
            t100s = [m["t100"] for m in X["rounds"] if m["t100"] is not None]
            out.append(f"- Median round (by time to 100 %, rounds with losses last): round {mr['round']}: publish → "
                       f"delivered on all {mr['ready']:,} streams p50 {fmt(mr['p50'], 3)} ms, p99 {fmt(mr['p99'], 3)} ms, "
                       f"100 % {fmt(mr['t100'], 3)} ms, lost {mr['lost']:,}"
                       + (f"; to 100 % ranged {min(t100s):.1f}–{max(t100s):.1f} ms over {len(X['rounds'])} rounds."
                          if t100s else "."))
        rd = X["ready"]
        kib = [(b - a) / r["headers"] if r.get("headers") else float("nan")
               for a, b, r in zip(X["rss0_kib"], X["rss1_kib"], rd)]
        out.append(f"- Streams ready ({ready_total:,} of {X['n_per'] * X['instances']:,}, failed "
                   f"{sum(r.get('failed', 0) for r in rd):,}) after {X['ready_s']:.1f} s; `/__beacon/status` clients "
                   f"per instance {X['status_clients']}; RSS per instance "
                   + ", ".join(f"{a / 1024:.0f} → {b / 1024:.0f} MiB" for a, b in zip(X["rss0_kib"], X["rss1_kib"]))
                   + " (" + ", ".join(f"{v:.1f}" for v in kib) + " KiB per stream).")
        out.append(f"- After the load clients exited: clients per instance {X.get('clients_left')} after "
                   f"{X.get('freed_s', 0):.2f} s; instances still running at the end: {X.get('alive')}.")
        out.append("")
        idle = X["idle"]
        rate = idle["total"] / idle["window_s"] if idle["window_s"] else 0.0
        out.append(f"**Redis commands per publish.** With all {ready_total:,} streams still open and reading, "
                   "`INFO stats commandstats` is read before and after each phase (the phase ends once every "
                   "instance's `/__beacon/status` `lastEventId` has reached the last publish, i.e. every follower "
                   "has read it); the INFO reads themselves are taken out. Both `total_commands_processed` and "
                   "`commandstats` also count the commands the publish script runs inside EVAL (XADD to the feed and "
                   "to the channel's history, XLEN of both, XRANGE + XDEL once a stream is over its cap), which are "
                   "no round trips: \"round trips\" below is the commands Δ less those (what the instances sent "
                   "over the network; XRANGE counts as the script's, since no client here sends Last-Event-ID, "
                   "the only other reason Beacon sends one). Every "
                   "instance follows the feed with `XREAD COUNT 1000 BLOCK 5000`, the publishing instance too (it "
                   "delivers its own publishes through the feed), so one publish costs 1 EVAL plus one XREAD per "
                   "instance whose follower reads it on its own; when events come faster than a follower's "
                   "round trip, one XREAD returns several and the XREADs per publish drop. An idle follower still "
                   f"returns from its blocking XREAD every 5 s: measured over {idle['window_s']:.1f} s with nothing "
                   f"published, {idle['total']} commands ({rate:.2f}/s: {idle['cmds'] or '{}'}); the \"less idle\" "
                   "column subtracts that rate over the phase's window.\n")
        out.append("| phase | publishes | HTTP 202 p50 / p99 ms | publishing took s | window s | commands Δ | "
                   "commands / publish | round trips / publish | round trips / publish less idle | EVAL / publish | "
                   "XREAD / publish | inside EVAL / publish | other |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for ph in X["phases"]:
            k = ph["k"]
            c = dict(ph["cmds"])
            ev = c.pop("eval", 0) + c.pop("evalsha", 0)
            xr = c.pop("xread", 0)
            inner = {x: c.pop(x) for x in SCRIPT_COMMANDS if x in c}
            other = ", ".join(f"{n} {v}" for n, v in c.items()) or "—"
            inside = ", ".join(f"{n} {v / k:.2f}" for n, v in inner.items()) or "—"
            inner = sum(inner.values())
            trips = ph["total"] - inner
            less = (trips - rate * ph["window_s"]) / k
            codes = ", ".join(f"{n}×{code}" for code, n in ph["codes"].items())
            out.append(f"| {ph['name']} | {k} ({codes}) | {ph['http_p50_ms']:.1f} / {ph['http_p99_ms']:.1f} | "
                       f"{ph['publish_s']:.2f} | {ph['window_s']:.2f} | {ph['total']:,} | {ph['total'] / k:.2f} | "
                       f"{trips / k:.2f} | {less:.2f} | {ev / k:.2f} | {xr / k:.2f} | {inner / k:.2f} ({inside}) | {other} |")
        out.append("")
        out.append("- Each publish waits for its 202 before the next is sent, so the pace is set by how fast the "
                   "publishing instance answers while it (and the machine) delivers the earlier events: mean "
                   "start-to-start " + ", ".join(f"{ph['name']} {ph['publish_s'] / ph['k'] * 1000:.0f} ms"
                                                 for ph in X["phases"]) + ".")
        held, exp = X["held"], X["held_expected"]
        out.append("- Delivery during those phases: events received per instance's client "
                   + ", ".join(f"{h.get('events', 0):,} of {e:,}" for h, e in zip(held, exp))
                   + f" (streams × {X['k']} × {len(X['phases'])}); streams closed by the server "
                   f"{[h.get('closed') for h in held]}; late stamped events {[h.get('late') for h in held]}; "
                   f"all counted within {X.get('drain_s', 0):.1f} s after the second phase ended.")
        out.append("- Beacon log (run with `--quiet`): " + ("; ".join(X["log_notes"]) if X["log_notes"]
                                                             else "nothing logged by any instance.") + "\n")
    if "scale" in R:
        asked = " and ".join(f"{X['n_per'] * X['instances']:,}" for X in R["scale"]["runs"])
        out.append(f"## 7b. Past one process: {asked} streams through Redis\n")
        out.append("This machine caps open files at 20,000 per process (a hard limit), so neither one server nor one "
                   "load client can hold 50,000 streams. They are held as a deployment would hold them: several "
                   "instances on one Redis, each with its share, exactly as in section 7 (one `sse_load` per instance, "
                   "stamped publishes through instance 0 only, rounds ≥1 s apart), without the command counts. "
                   "\"Under 1 s\" counts the rounds in which every stream of every instance had the event within 1 s "
                   "of the publish.\n")
        out.append("| streams asked | held | instances × streams | rounds | lost | to 100 % median | to 100 % range | "
                   "rounds under 1 s | p99 median | ready after | KiB per stream |")
        out.append("|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
        for X in R["scale"]["runs"]:
            m = scale_summary(X)
            out.append(f"| {m['asked']:,} | {m['held']:,} | {X['instances']} × {X['n_per']:,} | {m['rounds']} | "
                       f"{m['lost']:,} | {fmt(m['t100_median'], 1)} ms | {m['t100_range']} | {m['under_1s']} of "
                       f"{m['rounds']} | {fmt(m['p99_median'], 1)} ms | {X['ready_s']:.1f} s | {m['kib']:.1f} |")
        out.append("")
        for X in R["scale"]["runs"]:
            per = "; ".join(f"round {m['round']}: " + " / ".join(str(v) for v in m["per_instance_t100"])
                            for m in X["rounds"])
            out.append(f"- {X['instances']} instances, to 100 % per instance (ms, instance 0 publishes): {per}. "
                       f"After the load clients exited: clients per instance {X.get('clients_left')} after "
                       f"{X.get('freed_s', 0):.2f} s; instances still running: {X.get('alive')}. Beacon log: "
                       + ("; ".join(X["log_notes"]) if X["log_notes"] else "nothing logged.") )
        out.append("")
    out.append("## Commands\n")
    out.append("Temporary folders are created under /tmp and removed at the end; ports are free ones picked at run "
               "time (beacon: `--port 0`, others: a socket bound to 127.0.0.1:0 and closed).\n")
    out.append("```")
    for sec, cmds in ctx.commands.items():
        out.append(f"# {sec}")
        out.extend(cmds)
    out.append("```")
    with open(ctx.out, "w") as f:
        f.write("\n".join(out) + "\n")


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="shorter durations, smaller N")
    ap.add_argument("--fanout-n", help="comma-separated stream counts for Beacon's fan-out (default 1000,10000,19000; "
                    "quick: 1000)")
    ap.add_argument("--redis-instances", type=int, help="Beacon instances in the redis section (default 3; 2 to 12)")
    ap.add_argument("--redis-n", type=int, help="SSE streams per instance in the redis section (default 10000; "
                    "quick: 300)")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="where to write the report")
    args = ap.parse_args()
    sections = SECTIONS if not args.only else [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
    sections = [s for s in SECTIONS if s in sections]

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)  # even if started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    ctx = Ctx()
    ctx.quick = args.quick
    ctx.out = args.out
    ctx.results = {}
    ctx.fanout_n = [int(x) for x in args.fanout_n.split(",")] if args.fanout_n else None
    if args.redis_n is not None and not 1 <= args.redis_n <= 19000:
        ap.error("--redis-n must be between 1 and 19000 (one load-client process per instance, 20k open files each)")
    ctx.redis_n = args.redis_n
    if args.redis_instances is not None and not 2 <= args.redis_instances <= 12:
        ap.error("--redis-instances must be between 2 and 12")
    ctx.redis_instances = args.redis_instances
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    failures = []
    try:
        ensure_deps(sections)
        ctx.beacon = beacon_bin()
        ctx.machine = machine_info()
        ctx.versions = versions(ctx, sections)
        log(f"beacon: {ctx.beacon} ({ctx.versions['beacon']}); sections: {','.join(sections)}"
            f"{' (quick)' if ctx.quick else ''}; load average {ctx.machine['loadavg']}")
        if float((ctx.machine["loadavg"].split() or ["0"])[0].replace("?", "0")) > 1.0:
            log("warning: the machine is busy (1-min load average > 1): figures will be noisy")
        for sec in sections:
            PROCS.section = sec
            try:
                globals()[f"bench_{sec}"](ctx)
            except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                log(f"{sec} FAILED: {e!r}")
                import traceback
                traceback.print_exc()
                failures.append((sec, f"{type(e).__name__}: {e}"))
            finally:
                PROCS.stop_all()
        ctx.commands = PROCS.commands
        with open("/proc/loadavg") as f:
            ctx.loadavg_end = " ".join(f.read().split()[:3])
        rows = table_rows(ctx)
        for sec, err in failures:
            rows.append((sec, "FAILED", err[:200]))
        if rows:
            print_table(rows)
        write_results(ctx, [s for s in sections if s in ctx.results] or sections, started, time.monotonic() - t0)
        if failures:
            with open(ctx.out, "a") as f:
                f.write("\n## Failures\n\n" + "\n".join(f"- {s}: {e}" for s, e in failures) + "\n")
        log(f"wrote {ctx.out} ({(time.monotonic() - t0) / 60:.1f} min)")
        return 1 if failures else 0
    except KeyboardInterrupt:
        log("interrupted: stopping everything started")
        return 130
    except BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        PROCS.stop_all()
        for d in TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
