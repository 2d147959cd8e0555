"""The servers measured, started on 127.0.0.1 with free ports: Beacon (and its publish API), nginx,
python-livereload, redis-server; and the small site they all serve."""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

from .common import LOOPBACK, REPO, BenchError, mono_ns
from .network import free_port, http_get, wait_port
from .processes import PROCS, mktemp, read_line


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


def beacon_bin():
    env = os.environ.get("BEACON_BIN")
    cands = [env] if env else [os.path.join(REPO, ".build-release/release/beacon"),
                               os.path.join(REPO, ".build/release/beacon")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise BenchError(f"no beacon binary at {' or '.join(c for c in cands if c)}: build it (swift build -c release) "
                     "or set BEACON_BIN")


def beacon_cap_flag(binary):
    """Flags that lift Beacon's own connection cap, if this build has one."""
    r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=20)
    return ["--max-connections", "1000000"] if "--max-connections" in r.stdout + r.stderr else []


class Beacon:
    """`beacon serve [ROOT] --port 0 --quiet EXTRA...`, its port read from the `Serving ... at URL` line.
    root None: no directory (with `--proxy URL` in extra, every request goes upstream); cwd: its working
    folder (what it watches then)."""

    def __init__(self, binary, root, extra=(), logdir=None, cwd=None, env=None):
        logdir = logdir or mktemp("beacon-log-")
        self.logpath = os.path.join(logdir, f"beacon-{len(os.listdir(logdir))}.log")
        self.t_start = time.monotonic()
        args = [binary, "serve", *([root] if root is not None else []), "--port", "0", "--quiet", *extra]
        self.proc = PROCS.start(args, stdout=subprocess.PIPE, stderr=open(self.logpath, "w"), cwd=cwd, env=env)
        try:
            line = read_line(self.proc.stdout, 180, "beacon's 'Serving ... at' line")
        except BenchError as e:
            raise BenchError(f"{e}; beacon log: {self.log_tail()}")
        self.t_line = time.monotonic()
        m = re.search(r" at https?://[^\s/]+:(\d+)/", line)
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


class Publisher:
    """POST /__beacon/publish on one keep-alive connection (reconnects once on a failure)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def publish(self, channel, event=None, data=None, fresh=False):
        """event None: no event name (a plain message). data None: a CLOCK_MONOTONIC stamp taken once
        connected, right before the request is sent. Returns (HTTP status, id or None, stamp ns, ms until
        the answer)."""
        if fresh:
            self.close()
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
                    self.conn.connect()
                stamp = mono_ns()
                fields = {"channel": channel}
                if event is not None:
                    fields["event"] = event
                fields["data"] = str(stamp) if data is None else data
                body = json.dumps(fields)
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


def nginx_bin():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def nginx_conf(tmp, port, server_body, http_extra="", listen_extra=""):
    """An nginx.conf for one server on 127.0.0.1:port, run in the foreground with its files under `tmp`:
    `worker_processes auto`, `access_log off`, keep-alive without a request cap. server_body and http_extra
    are nginx directives for the server block and the http block."""
    user = ""
    if os.geteuid() == 0:
        user = "user root root;\n"  # run the workers as the current user (root here)
    return f"""{user}worker_processes auto;
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
{http_extra}    server {{
        listen {LOOPBACK}:{port}{listen_extra};
{server_body}    }}
}}
"""


def run_nginx(conf_text, port, tmp):
    """Writes tmp/nginx.conf and runs nginx on it (foreground, its own process group) until it listens."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    p = PROCS.start([nginx_bin(), "-p", tmp + "/", "-c", conf, "-e", os.path.join(tmp, "error.log")],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr.log"), "w"))
    wait_port(port, 15, p)
    return p


def start_nginx(root, port, tmp):
    return run_nginx(nginx_conf(tmp, port, f"        root {root};\n"), port, tmp)


BEACON_SCRIPT_TAG = '<script src="/__beacon/client.js"></script>'


def start_nginx_proxy(upstream_port, port, tmp, inject=BEACON_SCRIPT_TAG):
    """nginx as a reverse proxy to 127.0.0.1:upstream_port, the way one would put it in front of an app to
    inject a script: proxy_pass over keep-alive HTTP/1.1 (an upstream block, keepalive 32), identity encoding
    asked of the upstream, and sub_filter putting `inject` before the first </body>."""
    http_extra = f"""    upstream app {{
        server {LOOPBACK}:{upstream_port};
        keepalive 32;
    }}
"""
    server_body = f"""        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
            sub_filter '</body>' '{inject}</body>';
            sub_filter_once on;
        }}
"""
    return run_nginx(nginx_conf(tmp, port, server_body, http_extra), port, tmp)


LIVERELOAD_CMD = ("from livereload import Server; s = Server(); "
                  "s.serve(root={root!r}, port={port}, host='127.0.0.1', open_url_delay=None)")


def start_livereload(root, port, tmp):
    p = PROCS.start([sys.executable, "-c", LIVERELOAD_CMD.format(root=root, port=port)],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "livereload.log"), "w"), cwd=root)
    wait_port(port, 30, p)
    return p


def start_redis(tmp, extra=()):
    """redis-server without persistence on a free port, its files in `tmp`: (process, port)."""
    port = free_port()
    p = PROCS.start(["redis-server", "--port", port, "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--dir", tmp, *extra],
                    stdout=open(os.path.join(tmp, "redis.log"), "w"), stderr=subprocess.STDOUT)
    wait_port(port, 15, p)
    return p, port
