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

def request(port: int, method: str, path: str, headers=None, body=None, timeout: float = 5.0):
    """One request on a fresh connection: (status, headers as a dict of lower-case names, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def publish(port: int, channel: str, data: str, key=None, headers=None):
    """POST /__beacon/publish: (status, body)."""
    payload = {"channel": channel, "data": data, **({"id": key} if key else {})}
    status, _, body = request(port, "POST", "/__beacon/publish", {"Content-Type": "application/json", **(headers or {})},
                              json.dumps(payload))
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


def instance_args(redis, *extra):
    return ["--redis", redis.url, "--trust-proxy", "127.0.0.1", *extra]


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
        assert answer.startswith(b"HTTP/1.1 202"), answer
        publisher.close()
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        assert time.monotonic() - signalled < DRAIN_EXIT
        # The event it acknowledged is in Redis: a stream elsewhere replays it.
        with beacon_server(tmp_path, "b", ["--redis", redis.url]) as other:
            replay = RawStream(port_of(other), headers={"Last-Event-ID": "earliest"})
            assert replay.read_until(lambda text: "data: in flight" in text), replay.text()
            replay.close()
        stream.close()


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
        stuck.close()


def test_bad_drain_timeout_is_one_line_and_exit_1(tmp_path):
    for value in ("0", "-1", "nan", "abc"):
        result = subprocess.run([os.environ.get("BEACON_BIN", str(REPO_ROOT / ".build/debug/beacon")), "serve",
                                 str(tmp_path), "--drain-timeout", value], capture_output=True, text=True, timeout=10)
        assert result.returncode != 0
        assert "drain-timeout" in result.stderr
