"""Beacon in production: health checks, graceful drain, --trust-proxy, and two instances on one
redis-server behind a real nginx (Debian's nginx-light) configured from the file the README shows.

Everything listens on 127.0.0.1; every wait is bounded; fixtures stop what they started."""

import contextlib
import getpass
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, STOP_TIMEOUT, _free_port, beacon_server, redis_server, wait_for_port

TEMPLATE = Path(__file__).parent / "nginx" / "beacon.conf.template"
NGINX = "/usr/sbin/nginx"
WAIT = 15.0  # seconds: the bound on waiting for a condition (Redis reconnects back off up to 5 s)
DRAIN_EXIT = 5.0  # seconds: the default --drain-timeout, the bound on exiting after SIGTERM


# --- HTTP, by hand -------------------------------------------------------------------------------

def request(port: int, method: str, path: str, headers=None, body=None, timeout: float = 5.0, source=None):
    """One request on a fresh connection (from the address `source`, if given): (status, headers as a
    dict of lower-case names, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def publish(port: int, channel: str, data: str, key=None, headers=None, source=None):
    """POST /__beacon/publish: (status, body)."""
    payload = {"channel": channel, "data": data, **({"id": key} if key else {})}
    status, _, body = request(port, "POST", "/__beacon/publish", {"Content-Type": "application/json", **(headers or {})},
                              json.dumps(payload), source=source)
    return status, body


def ready_status(port: int):
    """The status of /__beacon/health/ready, or None when nothing answers."""
    try:
        return request(port, "GET", "/__beacon/health/ready", timeout=2)[0]
    except (OSError, http.client.HTTPException):
        return None


def wait_for(condition, what: str, timeout: float = WAIT, log=lambda: ""):
    """Polls `condition` until it is truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}\n{log()}", pytrace=False)
        time.sleep(0.05)


def port_of(server) -> int:
    return int(server.base_url.rstrip("/").rsplit(":", 1)[1])


class RawStream:
    """`GET /__beacon/events` on a raw socket, HTTP/1.1 chunked, read whole: the fields of every
    event and `retry:` line, in order, until the server ends the stream."""

    def __init__(self, port: int, channel: str = "default", headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /__beacon/events?channel={channel} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Accept: text/event-stream\r\n{extra}\r\n".encode())
        self.raw = b""
        self.ended = False
        while b"\r\n\r\n" not in self.raw:
            chunk = self.sock.recv(65536)
            assert chunk, "the stream closed before its head"
            self.raw += chunk
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        self.body = b""

    def read_until(self, predicate, timeout: float = WAIT) -> bool:
        """Reads until `predicate(body text)` holds or the stream ends; bounded."""
        deadline = time.monotonic() + timeout
        while not predicate(self.text()) and not self.ended:
            self._decode()
            if predicate(self.text()) or self.ended:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                chunk = b""
            if not chunk:
                self._decode()
                self.ended = True
                break
            self.raw += chunk
        return predicate(self.text())

    def _decode(self) -> None:
        # Chunked transfer coding: size line, bytes, CRLF; a zero size ends the body.
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# --- nginx ---------------------------------------------------------------------------------------

def nginx_config(listen: str, a: str, b: str) -> str:
    """The README's configuration, with its placeholders filled in."""
    return (TEMPLATE.read_text().replace("@LISTEN@", listen).replace("@BEACON_A@", a).replace("@BEACON_B@", b))


@contextlib.contextmanager
def nginx(tmp_path, upstream_ports):
    """A real nginx in front of two Beacon instances, in the foreground as a child process, with
    its own prefix, pid file and temp folders in `tmp_path`; yields its port."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"{NGINX} not found: install nginx-light (make test-deps does)")
    home = tmp_path / "nginx"
    home.mkdir()
    port = _free_port()
    (home / "beacon.conf").write_text(
        nginx_config(f"127.0.0.1:{port}", *(f"127.0.0.1:{p}" for p in upstream_ports)))
    temp = "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, workers run as root too: the test's folders are private to it.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (home / "nginx.conf").write_text(
        f"{user}worker_processes 1;\nworker_rlimit_nofile 4096;\npid {home}/nginx.pid;\n"
        f"events {{ worker_connections 2048; }}\n"
        f"http {{\n    access_log off;\n{temp}    include {home}/beacon.conf;\n}}\n")
    log = open(home / "stderr.log", "wb")
    process = subprocess.Popen(
        [NGINX, "-p", str(home), "-c", str(home / "nginx.conf"), "-e", "stderr", "-g", "daemon off; error_log stderr;"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        log.close()



# --- Health --------------------------------------------------------------------------------------

def test_live_and_ready_answer_200_with_json_and_head_works(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        status, headers, body = request(port, "GET", "/__beacon/health/live")
        assert (status, json.loads(body)) == (200, {"status": "live"})
        assert headers["content-type"].startswith("application/json")
        status, _, body = request(port, "GET", "/__beacon/health/ready")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        for path in ("/__beacon/health/live", "/__beacon/health/ready"):
            status, headers, body = request(port, "HEAD", path)
            assert (status, body) == (200, b"")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow(tmp_path, method):
    with beacon_server(tmp_path) as server:
        status, headers, body = request(port_of(server), method, "/__beacon/health/ready")
        assert status == 405
        assert headers["allow"] == "GET, HEAD"
        assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_health_is_guarded_like_status(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        for path in ("/__beacon/health/live", "/__beacon/health/ready"):
            status, _, body = request(port, "GET", path, {"Host": "evil.example"})
            assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
            status, _, body = request(port, "GET", path, {"Origin": "http://evil.example"})
            assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"
            status, _, body = request(port, "GET", path, {"Sec-Fetch-Site": "cross-site"})
            assert status == 403


def test_ready_is_503_while_redis_is_away_and_200_once_it_is_back(tmp_path):
    with redis_server(tmp_path) as redis, beacon_server(tmp_path, "a", ["--redis", redis.url]) as server:
        port = port_of(server)
        assert ready_status(port) == 200
        redis.stop()
        wait_for(lambda: ready_status(port) == 503, "ready said 503 with Redis gone", log=server.log)
        status, headers, body = request(port, "GET", "/__beacon/health/ready")
        answer = json.loads(body)
        assert answer["status"] == "not_ready" and answer["reason"] == "backend_unreachable"
        assert redis.url in answer["message"] and headers["retry-after"] == "1"
        # Still live: the process serves on, and publishes say why they fail.
        assert request(port, "GET", "/__beacon/health/live")[0] == 200
        assert publish(port, "default", "x")[0] == 503
        redis.start()
        wait_for(lambda: ready_status(port) == 200, "ready said 200 with Redis back", log=server.log)
        assert publish(port, "default", "back")[0] == 202


# --- Drain ---------------------------------------------------------------------------------------

def test_sigterm_ends_streams_with_a_short_retry_lets_a_publish_in_flight_finish_and_exits_0(tmp_path):
    with redis_server(tmp_path) as redis, beacon_server(tmp_path, "a", ["--redis", redis.url]) as server:
        port = port_of(server)
        stream = RawStream(port)
        assert stream.status == 200
        assert stream.read_until(lambda text: "event: hello" in text)
        # A publish that got in before the signal: its head is read (100 Continue says so), its
        # body comes after the signal.
        body = json.dumps({"channel": "default", "data": "in flight"}).encode()
        publisher = socket.create_connection(("127.0.0.1", port), timeout=5)
        publisher.sendall(b"POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert publisher.recv(1024).startswith(b"HTTP/1.1 100")
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # The stream ends, between two events, on a short retry.
        assert stream.read_until(lambda _: False, timeout=DRAIN_EXIT) is False and stream.ended, stream.text()
        assert re.search(r"\n\nretry: 250\n\n$", stream.text()), stream.text()
        publisher.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = publisher.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 202") and b"\r\nConnection: close\r\n" in answer, answer
        publisher.close()
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        assert time.monotonic() - signalled < DRAIN_EXIT
        # The event it acknowledged is in Redis: a stream elsewhere replays it.
        with beacon_server(tmp_path, "b", ["--redis", redis.url]) as other:
            replay = RawStream(port_of(other), headers={"Last-Event-ID": "earliest"})
            assert replay.read_until(lambda text: "data: in flight" in text), replay.text()
            replay.close()
        stream.close()


def test_ready_says_503_draining_on_a_kept_alive_connection_during_the_drain(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        # A health checker's kept-alive connection, as a proxy's would be.
        checker = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        checker.request("GET", "/__beacon/health/ready")
        first = checker.getresponse()
        assert (first.status, json.loads(first.read())) == (200, {"status": "ready"})
        server.process.send_signal(signal.SIGTERM)
        # Asked again at once, on the same connection, until an answer says the connection ends:
        # ready until the signal is handled, then 503 for good — the last one too, given once
        # the server is closing connections (it keeps this one a moment for a request on its way).
        deadline = time.monotonic() + DRAIN_EXIT
        statuses = []
        while time.monotonic() < deadline:
            checker.request("GET", "/__beacon/health/ready")
            answer = checker.getresponse()
            body = json.loads(answer.read())
            statuses.append(answer.status)
            if answer.getheader("Connection") == "close":
                break
        assert answer.getheader("Connection") == "close", statuses
        assert answer.status == 503 and body["reason"] == "draining", body
        first_503 = statuses.index(503)
        assert set(statuses[:first_503]) <= {200} and set(statuses[first_503:]) == {503}, statuses
        checker.close()

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except OSError:
                return True

        wait_for(refused, "the listener closed", timeout=DRAIN_EXIT)
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()


def test_a_drain_that_outlasts_its_timeout_still_exits_0(tmp_path):
    with beacon_server(tmp_path, extra_args=["--drain-timeout", "1"]) as server:
        port = port_of(server)
        # A publish whose body never comes holds its connection open.
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        stuck.sendall(b"POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n")
        assert stuck.recv(1024).startswith(b"HTTP/1.1 100")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        assert "the drain used its whole --drain-timeout (1 s)" in server.log()
        stuck.close()


def test_bad_drain_timeout_is_one_line_and_exit_1(tmp_path):
    for value in ("0", "-1", "nan", "abc"):
        result = subprocess.run([os.environ.get("BEACON_BIN", str(REPO_ROOT / ".build/debug/beacon")), "serve",
                                 str(tmp_path), "--drain-timeout", value], capture_output=True, text=True, timeout=10)
        assert result.returncode != 0
        assert "drain-timeout" in result.stderr


# --- Behind nginx --------------------------------------------------------------------------------

class Cluster:
    """redis-server, two Beacon instances on it (A and B) and nginx in front of both."""

    def __init__(self, tmp_path, stack: contextlib.ExitStack, extra=()):
        self.tmp_path = tmp_path
        self.stack = stack
        self.extra = list(extra)
        self.redis = stack.enter_context(redis_server(tmp_path))
        self.ports = [_free_port(), _free_port()]
        self.instances = [None, None]
        self.contexts = [None, None]
        self.names = [None, None]
        self.generation = 0
        for index in (0, 1):
            self.start(index)
        self.nginx = stack.enter_context(nginx(tmp_path, self.ports))

    def start(self, index: int) -> None:
        self.generation += 1
        self.names[index] = f"{'ab'[index]}{self.generation}"
        context = beacon_server(self.tmp_path, self.names[index],
                                instance_args(self.redis, *self.extra), port=self.ports[index])
        self.instances[index] = context.__enter__()
        self.contexts[index] = context
        self.stack.callback(self._stop, index, context)

    def _stop(self, index: int, context) -> None:
        if self.contexts[index] is context:
            self.contexts[index] = None
            context.__exit__(None, None, None)

    def restart(self, index: int) -> float:
        """SIGTERM, wait for exit 0 (bounded), start again on the same port; returns the drain's seconds."""
        process = self.instances[index].process
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=DRAIN_EXIT + 2)
        drained = time.monotonic() - signalled
        assert code == 0, self.instances[index].log()
        self._stop(index, self.contexts[index])
        self.start(index)
        return drained

    def routed_to(self, index: int) -> bool:
        """Whether nginx sends requests to instance `index` (again): some answer through it comes
        from there (its status names its folder)."""
        for _ in range(4):
            try:
                status, _, body = request(self.nginx, "GET", "/__beacon/status", timeout=2)
            except (OSError, http.client.HTTPException):
                continue
            if status == 200 and json.loads(body)["root"].endswith("/" + self.names[index]):
                return True
        return False

    def log(self) -> str:
        logs = [instance.log() for instance in self.instances if instance]
        nginx_log = self.tmp_path / "nginx" / "stderr.log"
        return "\n".join(logs) + "\n--- nginx ---\n" + (nginx_log.read_text(errors="replace") if nginx_log.exists() else "")


def instance_args(redis, *extra):
    return ["--redis", redis.url, "--trust-proxy", "127.0.0.1", *extra]


@pytest.fixture
def cluster(tmp_path):
    with contextlib.ExitStack() as stack:
        yield Cluster(tmp_path, stack)


def test_the_readme_shows_the_tested_nginx_configuration():
    readme = (REPO_ROOT / "README.md").read_text()
    assert TEMPLATE.read_text().strip() in readme


def test_pages_get_the_client_through_nginx(cluster):
    for _ in range(4):  # both instances, round robin
        status, headers, body = request(cluster.nginx, "GET", "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"/__beacon/client.js" in body
    status, headers, body = request(cluster.nginx, "GET", "/__beacon/client.js")
    assert status == 200 and "javascript" in headers["content-type"]


def test_an_event_published_through_nginx_reaches_a_stream_through_nginx(cluster):
    streams = [RawStream(cluster.nginx, "ops") for _ in range(2)]  # one on each instance
    try:
        for stream in streams:
            assert stream.status == 200
            assert stream.read_until(lambda text: "event: hello" in text), stream.text()
        published = time.monotonic()
        status, body = publish(cluster.nginx, "ops", "through nginx")
        assert status == 202, body
        for stream in streams:
            # Unbuffered: it arrives at once (bounded generously; the bound is not the measure).
            assert stream.read_until(lambda text: "data: through nginx" in text, timeout=2.0), stream.text()
        assert time.monotonic() - published < 2.0
    finally:
        for stream in streams:
            stream.close()


# --- --trust-proxy -------------------------------------------------------------------------------

# Loopback is 127.0.0.0/8: a client bound to 127.0.0.2 is "the proxy", one on 127.0.0.1 is not.
PROXY = "127.0.0.2"
ALLOWED = "app.example.test"


@pytest.fixture
def behind_proxy(tmp_path):
    with beacon_server(tmp_path, extra_args=["--trust-proxy", f"{PROXY}/32", "--trust-proxy", "fd00::/8",
                                             "--allow-host", ALLOWED]) as server:
        yield port_of(server)


def test_a_trusted_proxys_forwarded_host_is_the_one_checked(behind_proxy):
    port = behind_proxy
    local = f"127.0.0.1:{port}"
    # Outside the allowlist: refused, though Host is fine.
    status, _, _ = request(port, "GET", "/", {"Host": local, "X-Forwarded-Host": "evil.example"}, source=PROXY)
    assert status == 403
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "evil.example"},
                              source=PROXY)
    assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
    # Allowed: passes, though Host is a name Beacon does not answer to.
    status, _, body = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": ALLOWED}, source=PROXY)
    assert status == 200 and b"/__beacon/client.js" in body
    # Malformed from the proxy: a clear 400.
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "a b"}, source=PROXY)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_forwarded_host"
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Proto": "gopher"},
                              source=PROXY)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_forwarded_proto"
    # The server serves on.
    assert request(port, "GET", "/__beacon/health/live")[0] == 200


def test_forwarded_headers_from_anyone_else_are_ignored(behind_proxy):
    port = behind_proxy
    local = f"127.0.0.1:{port}"
    status, _, _ = request(port, "GET", "/", {"Host": local, "X-Forwarded-Host": "evil.example"})
    assert status == 200
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": "evil.example", "X-Forwarded-Host": ALLOWED})
    assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
    status, _, _ = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "a b",
                                                             "X-Forwarded-Proto": "gopher"})
    assert status == 200


def test_an_https_page_behind_the_proxy_may_publish_and_one_elsewhere_may_not(behind_proxy):
    port = behind_proxy
    page = {"Origin": f"https://{ALLOWED}", "X-Forwarded-Host": ALLOWED, "X-Forwarded-Proto": "https"}
    status, body = publish(port, "default", "from https", headers={"Host": "beacon-upstream", **page},
                           source=PROXY)
    assert status == 202, body
    # The same headers from a peer that is not the proxy: Origin is compared with http://Host.
    status, _, body = request(port, "POST", "/__beacon/publish",
                              {"Content-Type": "application/json", "Host": ALLOWED, **page},
                              json.dumps({"channel": "default", "data": "x"}))
    assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"
    # From the proxy, a page of another site is still another site.
    status, _, body = request(port, "POST", "/__beacon/publish",
                              {"Content-Type": "application/json", "Host": "beacon-upstream", **page,
                               "Origin": "https://evil.example"},
                              json.dumps({"channel": "default", "data": "x"}), source=PROXY)
    assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("args, env", [
    (["--trust-proxy", "10.0.0.0/33"], {}),
    (["--trust-proxy", "proxy.example"], {}),
    (["--trust-proxy", "::1/129"], {}),
    (["--trust-proxy", ""], {}),
    ([], {"BEACON_TRUST_PROXY": "127.0.0.1, not-an-address"}),
])
def test_a_malformed_trust_proxy_is_one_line_and_exit_1(tmp_path, args, env):
    binary = os.environ.get("BEACON_BIN", str(REPO_ROOT / ".build/debug/beacon"))
    result = subprocess.run([binary, "serve", str(tmp_path), "--port", "0", *args], capture_output=True, text=True,
                            timeout=10, env={**os.environ, **env})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ("--trust-proxy" in lines[0] or "BEACON_TRUST_PROXY" in lines[0]), result.stderr


def test_beacon_trust_proxy_lists_the_proxies(tmp_path, monkeypatch):
    monkeypatch.setenv("BEACON_TRUST_PROXY", f"10.0.0.0/8, {PROXY}")
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        status, _, _ = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": "127.0.0.1"},
                               source=PROXY)
        assert status == 200
        status, _, _ = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": "127.0.0.1"})
        assert status == 403


# --- Rolling restart -----------------------------------------------------------------------------

class Subscriber:
    """One EventSource, on a raw socket: reads a stream through nginx, and when it ends (or cannot
    start) reconnects after the last `retry:` with the last `id:` seen as `Last-Event-ID`."""

    def __init__(self, port: int, channel: str):
        self.port = port
        self.channel = channel
        self.sock = None
        self.last_id = None
        self.retry = 1.0
        self.due = 0.0
        self.data = []  # the data of every message event, in order
        self.errors = []  # reset events, or anything an EventSource would give up on
        self.connections = 0
        self.hello = False

    def connect(self) -> None:
        self.connections += 1
        self.raw, self.text, self.head_done, self.fields = b"", "", False, {}
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        last = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
        self.sock.sendall(f"GET /__beacon/events?channel={self.channel} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                          f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{last}\r\n".encode())
        self.sock.setblocking(False)

    def feed(self, chunk: bytes) -> bool:
        """Takes bytes read; False once the stream is over (the caller then reconnects)."""
        self.raw += chunk
        if not self.head_done:
            if b"\r\n\r\n" not in self.raw:
                return True
            head, self.raw = self.raw.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                return False  # 502 while both instances are away, say: retry
            self.head_done = True
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return False
            if len(rest) < size + 2:
                break
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]
        # Whole lines only; an event is dispatched at its blank line.
        *lines, self.text = self.text.split("\n")
        for line in lines:
            if line == "":
                if self.fields.get("event") == "reset":
                    self.errors.append(f"reset {self.fields.get('data')}")
                elif self.fields.get("event") == "hello":
                    self.hello = True
                elif "data" in self.fields and self.fields.get("event", "message") == "message":
                    self.data.append(self.fields["data"])
                self.fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "id":
                    self.last_id = value
                elif name == "retry":
                    self.retry = int(value) / 1000
                else:
                    self.fields[name] = value
        return True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


class Fleet(threading.Thread):
    """Many subscribers read by one thread (a selector), each reconnecting as EventSource does."""

    def __init__(self, port: int, count: int, channel: str):
        super().__init__(daemon=True)
        import selectors
        self.selector = selectors.DefaultSelector()
        self.subscribers = [Subscriber(port, channel) for _ in range(count)]
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        import selectors
        while not self.stopping.is_set():
            now = time.monotonic()
            with self.lock:
                for subscriber in self.subscribers:
                    if subscriber.sock is None and subscriber.due <= now:
                        try:
                            subscriber.connect()
                            self.selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
                        except OSError:
                            subscriber.close()
                            subscriber.due = now + subscriber.retry
                for key, _ in self.selector.select(timeout=0.02):
                    subscriber = key.data
                    try:
                        chunk = subscriber.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk or not subscriber.feed(chunk):
                        self.selector.unregister(subscriber.sock)
                        subscriber.close()
                        subscriber.due = time.monotonic() + subscriber.retry
        with self.lock:
            for subscriber in self.subscribers:
                subscriber.close()

    def all(self, predicate) -> bool:
        with self.lock:
            return all(predicate(subscriber) for subscriber in self.subscribers)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


class Publisher(threading.Thread):
    """Publishes numbered events through nginx, one at a time, each with its own id (idempotency
    key): a 202 is an acknowledgement; a 502, 503 or a connection error is retried, with the same
    id, so a publish that got in before the error is not a second event."""

    RETRY = (502, 503, 504)

    def __init__(self, port: int, channel: str, name: str, keep_going, at_least: int, deadline: float):
        super().__init__(daemon=True)
        self.port, self.channel, self.name = port, channel, name
        self.keep_going, self.at_least, self.deadline = keep_going, at_least, deadline
        self.acknowledged = []
        self.failures = []
        self.retries = 0
        self.statuses = {}

    def run(self) -> None:
        number = 0
        while (number < self.at_least or self.keep_going()) and time.monotonic() < self.deadline:
            text = f"{self.name}-{number}"
            while True:
                try:
                    status, body = publish(self.port, self.channel, text, key=text)
                except (OSError, http.client.HTTPException):
                    status, body = None, b""
                if status == 202:
                    self.acknowledged.append(text)
                    break
                if status not in (None, *self.RETRY) or time.monotonic() > self.deadline:
                    self.failures.append(f"{text}: {status} {body!r}")
                    return
                self.retries += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1
                time.sleep(0.05)
            number += 1
            time.sleep(0.01)


def test_a_rolling_restart_behind_nginx_loses_no_acknowledged_event_and_repeats_none(cluster):
    subscribers, publishers = 100, 8
    fleet = Fleet(cluster.nginx, subscribers, "roll")
    fleet.start()
    try:
        wait_for(lambda: fleet.all(lambda s: s.hello), f"all {subscribers} streams through nginx had their hello",
                 log=cluster.log)
        restarting = threading.Event()
        restarting.set()
        deadline = time.monotonic() + 30
        workers = [Publisher(cluster.nginx, "roll", f"p{i}", restarting.is_set, 20, deadline) for i in range(publishers)]
        for worker in workers:
            worker.start()
        time.sleep(0.3)  # publishes in flight on both instances before the first restart
        # As an operator would: restart one, wait until it is ready and the proxy sends it
        # traffic again (nginx takes a refusing instance out for fail_timeout), then the next.
        drains = []
        for index in (0, 1):
            drains.append(cluster.restart(index))
            wait_for(lambda: ready_status(cluster.ports[index]) == 200, f"{'AB'[index]} was ready again", log=cluster.log)
            wait_for(lambda: cluster.routed_to(index), f"nginx sent requests to {'AB'[index]} again", log=cluster.log)
        time.sleep(0.3)
        restarting.clear()
        for worker in workers:
            worker.join(timeout=40)
        failures = [failure for worker in workers for failure in worker.failures]
        assert not failures, failures
        acknowledged = {worker.name: worker.acknowledged for worker in workers}
        total = sum(len(events) for events in acknowledged.values())
        expected_last = {name: events[-1] for name, events in acknowledged.items()}

        def caught_up(subscriber) -> bool:
            return all(name_last in subscriber.data for name_last in expected_last.values())

        wait_for(lambda: fleet.all(caught_up), "every stream had every publisher's last event", log=cluster.log)
    finally:
        fleet.stop()
    for index, subscriber in enumerate(fleet.subscribers):
        assert not subscriber.errors, f"subscriber {index}: {subscriber.errors}"
        for name, events in acknowledged.items():
            seen = [text for text in subscriber.data if text.startswith(name + "-")]
            # Exactly once and in order: what each publisher had acknowledged, nothing more, nothing twice.
            assert seen == events, f"subscriber {index}, {name}: got {seen}, acknowledged {events}"
    reconnected = sum(1 for subscriber in fleet.subscribers if subscriber.connections > 1)
    # Each instance held some of the streams when it restarted.
    assert reconnected > 0
    print(f"\nrolling restart: {total} events from {publishers} publishers "
          f"({sum(w.retries for w in workers)} retries: {[w.statuses for w in workers]}), {subscribers} streams, {reconnected} reconnected "
          f"({sum(s.connections - 1 for s in fleet.subscribers)} reconnects), drains {drains[0]:.2f} s and {drains[1]:.2f} s")
