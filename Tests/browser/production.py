"""What test_operations.py runs Beacon with, as production would: requests by hand, a raw event
stream, a real nginx in front of two instances on one redis-server (the cluster), and the
rolling restart's publishers and EventSource-like readers. Every wait is bounded."""

import contextlib
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import STOP_TIMEOUT, _free_port, beacon_server, redis_server, wait_for_port

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


# --- Two instances behind nginx ------------------------------------------------------------------

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


# --- Rolling restart: publishers and readers -----------------------------------------------------

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
        self.selector = selectors.DefaultSelector()
        self.subscribers = [Subscriber(port, channel) for _ in range(count)]
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
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
