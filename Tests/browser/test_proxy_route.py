"""`beacon serve --proxy URL` without a folder: the front door's own route to the app for GET and
HEAD (FrontDoor+Proxy, UpstreamLink, ProxiedAnswer), seen from outside.

The apps here are small socket servers in threads, written byte for byte, so a test can count the
connections Beacon opens to the app, the requests that reach it, and give Beacon the exact answers
real apps give: keep-alive and not, HTTP/1.0, early hints, garbage, a 101, an answer cut short, a
stream that never ends. The browser side is a raw socket too, so pipelining, HTTP/1.0 and framing
are seen as they are on the wire. Everything is on 127.0.0.1 and every wait is bounded.
"""

import json
import select
import signal
import socket
import struct
import threading
import time
import zlib

import pytest

from conftest import _free_port, beacon_server

TAG = b'<script src="/__beacon/client.js"></script>'
WAIT = 10.0  # seconds: the bound on every wait here


def page(name: str) -> bytes:
    return (f"<!doctype html><html><head><title>{name}</title></head>"
            f"<body><h1>page {name}</h1></body></html>").encode()


def answer(body: bytes = b"", status: str = "200 OK", content_type: str = "text/html; charset=utf-8",
           headers=(), length: bool = True, version: str = "HTTP/1.1") -> bytes:
    """An answer as an app writes it: status line, Content-Type, the extra header lines, and
    Content-Length unless `length` is False."""
    lines = [f"{version} {status}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.extend(headers)
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 7) -> bytes:
    """`body` in chunks of `size` bytes, with the last chunk."""
    out = b""
    for start in range(0, len(body), size):
        piece = body[start:start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# MARK: - The app


class AppRequest:
    def __init__(self, connection: int, raw: bytes):
        self.connection = connection  # which of the app's connections it came on (0, 1, ...)
        self.raw = raw
        line, *fields = raw.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = line.split(" ", 2)
        self.headers = {}
        for field in fields:
            if field:
                name, _, value = field.partition(":")
                self.headers[name.strip().lower()] = value.strip()

    def __repr__(self):
        return f"<{self.method} {self.target} on app connection {self.connection}>"


class AppConnection:
    """One connection Beacon opened to the app."""

    def __init__(self, app, sock: socket.socket, index: int):
        self.app = app
        self.sock = sock
        self.index = index
        self.buffer = b""
        self.requests = 0
        self.ended = None  # how it ended: "eof", "reset", "closed here"
        sock.settimeout(WAIT)

    def read_request(self):
        """The next request's head (GET and HEAD have no body), or None once Beacon closes."""
        while b"\r\n\r\n" not in self.buffer:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                self.ended = self.ended or "reset"
                return None
            if not data:
                self.ended = self.ended or "eof"
                return None
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        request = AppRequest(self.index, raw)
        self.requests += 1
        self.app.record(request)
        return request

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.ended = self.ended or "reset"
            return False

    def peer_left(self, timeout: float) -> bool:
        """Whether Beacon closed its side within `timeout` (EOF or reset), reading what it sends."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        try:
            data = self.sock.recv(65536)
        except OSError:
            self.ended = self.ended or "reset"
            return True
        if not data:
            self.ended = self.ended or "eof"
            return True
        self.buffer += data
        return False


class App:
    """A tiny app on 127.0.0.1: `handler(connection)` runs in a thread for each connection Beacon
    opens. It keeps every connection and every request, for the tests to count."""

    def __init__(self, handler, port: int = 0):
        self.handler = handler
        self.cond = threading.Condition()
        self.connections = []
        self.requests = []
        self.stopping = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.listener.settimeout(0.1)  # the accept loop checks `stopping` this often
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                connection = AppConnection(self, sock, len(self.connections))
                self.connections.append(connection)
                self.cond.notify_all()
            thread = threading.Thread(target=self._run, args=(connection,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _run(self, connection: AppConnection):
        try:
            self.handler(connection)
        except OSError:
            connection.ended = connection.ended or "reset"
        finally:
            if connection.ended is None:
                connection.ended = "closed here"
            try:
                connection.sock.close()
            except OSError:
                pass
            with self.cond:
                self.cond.notify_all()

    def record(self, request: AppRequest):
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()

    def used(self) -> int:
        """Connections that carried a request (Beacon's start-up check connects and sends nothing)."""
        with self.cond:
            return sum(1 for c in self.connections if c.requests > 0)

    def targets(self) -> list:
        with self.cond:
            return [r.target for r in self.requests]

    def wait_for(self, predicate, what: str, timeout: float = WAIT):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}; "
                            f"requests: {self.requests}; connections: "
                            f"{[(c.index, c.requests, c.ended) for c in self.connections]}", pytrace=False)

    def stop(self):
        self.stopping = True
        for thread in self.threads[:1]:
            thread.join(WAIT)
        self.listener.close()
        with self.cond:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads[1:]:
            thread.join(WAIT)


def keep_alive(reply):
    """A handler answering each request of a connection with `reply(request, connection)`: the bytes
    to send, or None to close the connection without answering."""
    def handler(connection: AppConnection):
        while (request := connection.read_request()) is not None:
            data = reply(request, connection)
            if data is None or not connection.send(data):
                return
    return handler


def pages(request: AppRequest, connection: AppConnection):
    """/page/NAME is an HTML page, /data.json JSON; /chunked/NAME and /chunked.txt come in the
    app's chunks; HEAD answers with the GET's head."""
    if request.target.startswith("/page/"):
        body = page(request.target[len("/page/"):])
        data = answer(body)
    elif request.target.startswith("/chunked/"):
        # The app's own chunks, 7 bytes each: `</body>` spans two of them.
        body = page(request.target[len("/chunked/"):])
        data = answer(b"", length=False, headers=("Transfer-Encoding: chunked",)) + chunked(body)
    elif request.target == "/chunked.txt":
        data = answer(b"", content_type="text/plain", length=False,
                      headers=("Transfer-Encoding: chunked",)) + chunked(b"plain text in pieces\n" * 10)
    elif request.target == "/data.json":
        data = answer(b'{"k": "v",  "n": [1,2,3]}\n', content_type="application/json")
    else:
        data = answer(b"not here\n", status="404 Not Found", content_type="text/plain")
    if request.method == "HEAD":
        data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return data


# MARK: - The browser


class Response:
    def __init__(self, raw_head: bytes):
        self.raw_head = raw_head
        line, *fields = raw_head.decode("latin-1").split("\r\n")
        self.version, status, *_ = line.split(" ", 2) + [""]
        self.status = int(status)
        self.fields = []
        for field in fields:
            name, _, value = field.partition(":")
            self.fields.append((name.strip().lower(), value.strip()))
        self.body = b""
        self.complete = False

    def all(self, name: str) -> list:
        return [value for field, value in self.fields if field == name.lower()]

    def header(self, name: str):
        values = self.all(name)
        return values[0] if values else None

    def __repr__(self):
        return f"<{self.raw_head!r} + {len(self.body)} body bytes, complete={self.complete}: {self.body[:300]!r}>"


class Browser:
    """A raw connection to Beacon, reading answers as HTTP/1.1 frames them."""

    def __init__(self, beacon, receive_buffer: int = 0, pace: float = 0.0):
        self.pace = pace  # seconds between reads: a browser on a slow network
        self.port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
        self.beacon = beacon
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", self.port))
        self.buffer = bytearray()  # read, not yet parsed (a bytearray: appending is not quadratic)
        self.eof = False
        self.seen = b""  # the last 64 KiB read, for failure messages

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def request(self, method: str, path: str, version: str = "HTTP/1.1", headers=()) -> bytes:
        lines = [f"{method} {path} {version}", f"Host: 127.0.0.1:{self.port}", *headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def get(self, path: str, **kwargs) -> "Response":
        self.send(self.request("GET", path, **kwargs))
        return self.read_response()

    def _more(self, deadline: float) -> bool:
        """Reads more bytes; False at the end of the connection. Fails the test past `deadline`."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._hang(deadline)
        if self.pace:
            time.sleep(self.pace)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            self._hang(deadline)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        self.seen = (self.seen + data)[-65536:]
        return True

    def _hang(self, deadline):
        pytest.fail(f"Beacon sent nothing more for {WAIT:.0f} s (a hang); bytes seen on this connection:\n"
                    f"{self.seen[-3000:]!r}\n{self.beacon.log()[-4000:]}", pytrace=False)

    def read_response(self, head_request: bool = False, timeout: float = WAIT, strict: bool = True) -> Response:
        """The next answer. With `strict`, fails unless it is whole; without, returns what came
        before the connection ended (`complete` False)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            if not self._more(deadline):
                pytest.fail(f"the connection ended before an answer's head; bytes: {self.buffer!r}\n"
                            f"{self.beacon.log()[-4000:]}", pytrace=False)
        end = self.buffer.index(b"\r\n\r\n")
        raw_head = bytes(self.buffer[:end])
        del self.buffer[:end + 4]
        response = Response(raw_head)
        if not raw_head.startswith(b"HTTP/1."):
            pytest.fail(f"not an answer's head: {raw_head!r}", pytrace=False)
        coding = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if head_request or response.status in (204, 304) or 100 <= response.status < 200:
            response.complete = True
        elif coding:
            assert coding == "chunked", response
            assert length is None, f"both Content-Length and chunked: {response!r}"
            response.complete = self._chunks(response, deadline)
        elif length is not None:
            while len(self.buffer) < int(length):
                if not self._more(deadline):
                    break
            response.body = bytes(self.buffer[:int(length)])
            del self.buffer[:int(length)]
            response.complete = len(response.body) == int(length)
        else:
            while self._more(deadline):
                pass
            response.body = bytes(self.buffer)
            self.buffer = bytearray()
            response.complete = True  # a body to the close ends with it
        if strict and not response.complete:
            pytest.fail(f"the connection ended in the middle of an answer: {response!r}\n"
                        f"{self.beacon.log()[-4000:]}", pytrace=False)
        return response

    def _chunks(self, response: Response, deadline: float) -> bool:
        body = bytearray()
        try:
            while True:
                while b"\r\n" not in self.buffer:
                    if not self._more(deadline):
                        return False
                line = bytes(self.buffer[:self.buffer.index(b"\r\n")])
                size = int(line.split(b";")[0], 16)
                del self.buffer[:len(line) + 2]
                if size == 0:
                    # Trailers, then the empty line.
                    while True:
                        while b"\r\n" not in self.buffer:
                            if not self._more(deadline):
                                return False
                        end = self.buffer.index(b"\r\n")
                        trailer = bytes(self.buffer[:end])
                        del self.buffer[:end + 2]
                        if trailer == b"":
                            return True
                while len(self.buffer) < size + 2:
                    if not self._more(deadline):
                        body += self.buffer[:size]
                        self.buffer = bytearray()
                        return False
                assert self.buffer[size:size + 2] == b"\r\n", f"bad chunk framing: {self.seen[-500:]!r}"
                body += self.buffer[:size]
                del self.buffer[:size + 2]
        finally:
            response.body = bytes(body)

    def closes_within(self, timeout: float) -> bool:
        """Whether Beacon ends the connection within `timeout`, with no further bytes."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not data:
                self.eof = True
                return True
            self.buffer += data
            self.seen = (self.seen + data)[-65536:]


def assert_injected_once(response: Response, original: bytes):
    assert response.status == 200, response
    assert response.body.count(TAG) == 1, response
    assert response.body.replace(TAG, b"", 1) == original, response
    assert response.body.index(TAG) + len(TAG) == response.body.index(b"</body>"), response


def beacon_for(tmp_path, app_port: int, name: str = "site"):
    return beacon_server(tmp_path, name=name, extra_args=("--proxy", f"http://127.0.0.1:{app_port}"),
                         site_dir=False)


@pytest.fixture
def apps():
    """Starts apps (`apps(handler)`) and stops every one when the test ends."""
    started = []

    def start(handler, port: int = 0) -> App:
        app = App(handler, port)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


def beacon_status_ok(beacon) -> None:
    """Beacon still answers, on a new connection."""
    browser = Browser(beacon)
    try:
        response = browser.get("/__beacon/status")
        assert response.status == 200 and isinstance(json.loads(response.body), dict), response
    finally:
        browser.close()


# MARK: - 1. One app connection per browser connection, one tag per page


def test_a_browser_connection_keeps_one_app_connection_and_every_page_gets_one_tag(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        for name in ("one", "two", "three", "four"):
            response = browser.get(f"/page/{name}")
            assert_injected_once(response, page(name))
            # The page grew: its length is not the app's. A page that came whole goes out with its
            # new length; one that streams, chunked.
            if response.header("content-length") is not None:
                assert response.header("content-length") == str(len(response.body)), response
                assert response.header("transfer-encoding") is None, response
            else:
                assert response.header("transfer-encoding") == "chunked", response
        response = browser.get("/data.json")
        assert response.body == b'{"k": "v",  "n": [1,2,3]}\n', response
        assert response.header("content-length") == str(len(response.body)), response
        assert TAG not in response.body
        # The app's own chunks: the page is injected across them, the text passes as it is.
        assert_injected_once(browser.get("/chunked/pieces"), page("pieces"))
        response = browser.get("/chunked.txt")
        assert response.body == b"plain text in pieces\n" * 10 and TAG not in response.body, response
        assert app.targets() == ["/page/one", "/page/two", "/page/three", "/page/four", "/data.json",
                                 "/chunked/pieces", "/chunked.txt"]
        assert app.used() == 1, f"requests per app connection: {app.requests}"
        # Another browser connection has its own.
        other = Browser(beacon)
        assert_injected_once(other.get("/page/five"), page("five"))
        assert app.used() == 2
        assert_injected_once(browser.get("/page/six"), page("six"))
        by_target = {r.target: r.connection for r in app.requests}
        assert by_target["/page/six"] == by_target["/page/one"] != by_target["/page/five"], app.requests
        browser.close()
        other.close()


def test_each_answer_on_a_kept_connection_starts_clean_whatever_the_one_before_it_was(tmp_path, apps):
    """The front door keeps one answer object per connection and renews it for each request: a
    compressed page, one streamed in the app's chunks, a CSP nonce, a HEAD, a 304, JSON and a
    page left alone follow each other on one connection, each in every order it can come, and
    each is written as if it came first (no decoder, framing, tag or length left behind)."""
    nonce_page = page("nonce").replace(b"<body>", b"<body><p>n</p>")
    loads_client = page("own").replace(b"</body>", TAG + b"</body>")

    def gzipped(body: bytes) -> bytes:
        packer = zlib.compressobj(wbits=31)
        return packer.compress(body) + packer.flush()

    def reply(request, connection):
        target = request.target
        if target == "/gzip":
            data = answer(gzipped(page("gzip")), headers=("Content-Encoding: gzip",))
        elif target == "/nonce":
            data = answer(nonce_page, headers=("Content-Security-Policy: script-src 'nonce-abc123'",))
        elif target == "/own":
            data = answer(loads_client)
        elif target == "/304":
            data = b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 99\r\n\r\n'
        else:
            return pages(request, connection)
        if request.method == "HEAD":
            data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        return data

    def check(browser, kind):
        if kind == "head":
            browser.send(browser.request("HEAD", "/page/h"))
            response = browser.read_response(head_request=True)
            assert response.status == 200 and response.body == b"", response
            assert response.header("content-length") == str(len(page("h"))), response
            return
        response = browser.get({"gzip": "/gzip", "chunked": "/chunked/c", "nonce": "/nonce", "304": "/304",
                                "json": "/data.json", "own": "/own", "page": "/page/p"}[kind])
        if kind == "gzip":
            assert_injected_once(response, page("gzip"))
            assert response.header("content-encoding") is None, response
        elif kind == "chunked":
            assert_injected_once(response, page("c"))
        elif kind == "nonce":
            tag = b'<script src="/__beacon/client.js" nonce="abc123"></script>'
            assert response.body.count(tag) == 1, response
            assert response.body.replace(tag, b"", 1) == nonce_page, response
        elif kind == "304":
            assert response.status == 304 and response.body == b"", response
            assert response.header("transfer-encoding") is None, response
        elif kind == "json":
            assert response.body == b'{"k": "v",  "n": [1,2,3]}\n', response
            assert response.header("content-length") == str(len(response.body)), response
        elif kind == "own":
            assert response.body == loads_client, response
            assert response.header("content-length") == str(len(loads_client)), response
        else:
            assert_injected_once(response, page("p"))
            assert response.header("content-length") == str(len(response.body)), response

    kinds = ["gzip", "chunked", "nonce", "head", "304", "json", "own", "page"]
    app = apps(keep_alive(reply))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        # Every kind after every other kind (and itself), on one connection.
        for before in kinds:
            for after in kinds:
                check(browser, before)
                check(browser, after)
        assert app.used() == 1, f"requests per app connection: {app.requests}"
        browser.close()


# MARK: - 2. Pipelining


def test_pipelined_requests_are_answered_in_order_around_beacons_own(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/a") + browser.request("GET", "/__beacon/status")
                     + browser.request("GET", "/page/b") + browser.request("HEAD", "/page/c")
                     + browser.request("GET", "/data.json"))
        assert_injected_once(browser.read_response(), page("a"))
        status = browser.read_response()
        assert status.status == 200 and isinstance(json.loads(status.body), dict), status
        assert_injected_once(browser.read_response(), page("b"))
        head = browser.read_response(head_request=True)
        assert head.status == 200 and head.header("content-length") == str(len(page("c"))), head
        data = browser.read_response()
        assert data.body == b'{"k": "v",  "n": [1,2,3]}\n', data
        assert browser.buffer == b"", f"bytes after the last answer: {browser.buffer!r}"
        # (Behind Beacon's own answer the app's requests go the router's way, to keep the order:
        # how many connections to the app they take is not this test's business.)
        assert app.targets() == ["/page/a", "/page/b", "/page/c", "/data.json"]
        browser.close()


def test_pipelined_requests_for_the_app_share_its_one_connection_in_order(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/a") + browser.request("HEAD", "/page/b")
                     + browser.request("GET", "/data.json") + browser.request("GET", "/page/c"))
        assert_injected_once(browser.read_response(), page("a"))
        head = browser.read_response(head_request=True)
        assert head.status == 200 and head.header("content-length") == str(len(page("b"))), head
        assert browser.read_response().body == b'{"k": "v",  "n": [1,2,3]}\n'
        assert_injected_once(browser.read_response(), page("c"))
        assert browser.buffer == b"", f"bytes after the last answer: {browser.buffer!r}"
        assert app.targets() == ["/page/a", "/page/b", "/data.json", "/page/c"]
        assert app.used() == 1, app.requests
        browser.close()


def test_a_pipelined_request_behind_a_slow_app_answer_comes_back_second(tmp_path, apps):
    def slow_then_fast(request, connection):
        if request.target == "/page/slow":
            time.sleep(0.3)  # the app takes its time (the app's delay, not a wait for a condition)
        return pages(request, connection)

    app = apps(keep_alive(slow_then_fast))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/slow") + browser.request("GET", "/page/fast")
                     + browser.request("GET", "/data.json"))
        assert_injected_once(browser.read_response(), page("slow"))
        assert_injected_once(browser.read_response(), page("fast"))
        assert browser.read_response().body == b'{"k": "v",  "n": [1,2,3]}\n'
        assert app.targets() == ["/page/slow", "/page/fast", "/data.json"]
        assert app.used() == 1
        browser.close()


# MARK: - 3. An app that closes its kept connection


@pytest.mark.parametrize("when", ["after its answer", "on the next request"])
def test_an_app_closing_its_kept_connection_unannounced_is_not_a_502(tmp_path, apps, when):
    closed_once = threading.Event()

    def close_unannounced(request, connection):
        if when == "after its answer":
            # Answers (keep-alive, no Connection: close), then closes at once.
            connection.send(pages(request, connection))
            return None
        # Keeps its first connection after the first answer, and closes it on the second request
        # without answering: an idle timeout that met the request on the way. Later connections
        # are kept.
        if connection.requests == 1 or closed_once.is_set():
            return pages(request, connection)
        closed_once.set()
        return None

    app = apps(keep_alive(close_unannounced))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        assert_injected_once(browser.get("/page/first"), page("first"))
        if when == "after its answer":
            app.wait_for(lambda: app.connections[-1].ended is not None, "the app closed its first connection")
        assert_injected_once(browser.get("/page/second"), page("second"))
        assert_injected_once(browser.get("/page/third"), page("third"))
        assert app.used() == (3 if when == "after its answer" else 2), app.requests
        if when == "on the next request":
            # The unanswered request went again once, on a new connection.
            assert app.targets() == ["/page/first", "/page/second", "/page/second", "/page/third"]
            first, second = app.requests[0].connection, app.requests[2].connection
            assert [r.connection for r in app.requests] == [first, first, second, second] and first != second
        browser.close()


# MARK: - 4. HTTP/1.0


def test_an_http10_page_ends_at_the_close_with_the_tag(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        for headers in ((), ("Connection: keep-alive",)):
            browser = Browser(beacon)
            response = browser.get("/page/old", version="HTTP/1.0", headers=headers)
            assert response.raw_head.startswith(b"HTTP/1.0 200"), response
            assert response.header("transfer-encoding") is None, response
            assert_injected_once(response, page("old"))
            if response.header("content-length") is not None:
                # A page that came whole goes out with its new length, and a keep-alive client
                # keeps its connection.
                assert response.header("content-length") == str(len(response.body)), response
                if headers:
                    assert (response.header("connection") or "").lower() == "keep-alive", response
                else:
                    assert (response.header("connection") or "").lower() == "close", response
                    assert browser.closes_within(WAIT), "an HTTP/1.0 connection without keep-alive ends"
            else:
                # No length: the body ends with the connection, which must say so to a keep-alive client.
                assert response.header("connection") == "close", response
                assert browser.eof, "the body of an HTTP/1.0 page must end at the close"
            browser.close()


def test_an_http10_keep_alive_request_for_a_sized_answer_keeps_the_connection(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        keep = ("Connection: keep-alive",)
        response = browser.get("/data.json", version="HTTP/1.0", headers=keep)
        assert response.raw_head.startswith(b"HTTP/1.0 200"), response
        assert response.header("connection") == "keep-alive", response
        assert response.header("content-length") == str(len(response.body)), response
        assert response.body == b'{"k": "v",  "n": [1,2,3]}\n'
        again = browser.get("/data.json", version="HTTP/1.0", headers=keep)
        assert again.raw_head.startswith(b"HTTP/1.0 200") and again.body == response.body, again
        # Without keep-alive, HTTP/1.0 ends the connection after the answer.
        browser.send(browser.request("GET", "/data.json", version="HTTP/1.0"))
        last = browser.read_response()
        assert last.header("connection") in (None, "close"), last
        assert browser.closes_within(WAIT), "an HTTP/1.0 connection without keep-alive stayed open"
        assert app.used() == 1
        browser.close()


# MARK: - 5. HEAD


def test_head_of_a_page_keeps_the_apps_length_sends_no_body_and_the_connection_goes_on(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("HEAD", "/page/head"))
        head = browser.read_response(head_request=True)
        assert head.status == 200 and head.header("content-length") == str(len(page("head"))), head
        assert head.header("transfer-encoding") is None, head
        # Nothing follows the head: the next bytes are the next answer's status line.
        assert_injected_once(browser.get("/page/next"), page("next"))
        assert app.targets() == ["/page/head", "/page/next"]
        assert [r.method for r in app.requests] == ["HEAD", "GET"]
        assert app.used() == 1
        browser.close()


# MARK: - 6, 7. Answers that cannot be read


def garbage_or_101(kind):
    def reply(request, connection):
        if request.target == "/page/fine":
            return pages(request, connection)
        if kind == "garbage":
            # Not HTTP, and the connection stays open: Beacon must not wait for its close.
            connection.send(b"NOT HTTP AT ALL\r\n\r\n")
            connection.peer_left(WAIT)
            return None
        if kind == "101":
            connection.send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            connection.peer_left(WAIT)
            return None
        return None  # "closed": reads the request and closes without a word
    return reply


# (A kept connection closed before any answer is sent again: see the test of an app closing its
# kept connection.)
@pytest.mark.parametrize("kind, connection", [("garbage", "fresh"), ("garbage", "kept"), ("101", "fresh"),
                                              ("101", "kept"), ("closed", "fresh")])
def test_an_unreadable_answer_is_a_502_and_the_request_is_not_sent_again(tmp_path, apps, kind, connection):
    app = apps(keep_alive(garbage_or_101(kind)))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        if connection == "kept":
            assert_injected_once(browser.get("/page/fine"), page("fine"))
        started = time.monotonic()
        response = browser.get("/page/bad")
        assert response.status == 502, response
        assert b"cannot be read" in response.body, response
        assert time.monotonic() - started < 3, "a 502 for an unreadable answer needs no retry time"
        assert app.targets().count("/page/bad") == 1, f"the request went to the app again: {app.requests}"
        # The browser's connection goes on, and Beacon answers a new one.
        status = browser.get("/__beacon/status")
        assert status.status == 200, status
        beacon_status_ok(beacon)
        assert app.targets().count("/page/bad") == 1, app.requests
        browser.close()


AMBIGUOUS_ANSWERS = {
    # Answers a lenient reader could take as one thing and the browser (or a cache) as another.
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
    "length-and-chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    "folded": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("kind", sorted(AMBIGUOUS_ANSWERS))
@pytest.mark.parametrize("path", ["route", "router"])
def test_an_answer_that_could_be_read_two_ways_is_a_502_on_both_paths(tmp_path, apps, kind, path):
    def reply(request, connection):
        if request.target == "/page/fine":
            return pages(request, connection)
        connection.send(AMBIGUOUS_ANSWERS[kind])
        connection.peer_left(WAIT)
        return None

    app = apps(keep_alive(reply))
    # Without a folder, GET goes from the front door's route; with one (which lacks the page), through
    # the router's proxy.
    server = (beacon_for(tmp_path, app.port) if path == "route" else
              beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{app.port}")))
    with server as beacon:
        browser = Browser(beacon)
        response = browser.get("/page/bad")
        assert response.status == 502, response
        assert b"cannot be read" in response.body, response
        assert app.targets().count("/page/bad") == 1, f"the request went to the app again: {app.requests}"
        fresh = Browser(beacon)
        assert_injected_once(fresh.get("/page/fine"), page("fine"))
        fresh.close()
        browser.close()


# MARK: - 8. An answer cut short


@pytest.mark.parametrize("content_type", ["text/plain", "text/html"])
def test_an_app_closing_in_the_middle_of_an_answer_closes_the_browsers_connection(tmp_path, apps, content_type):
    def cut_short(request, connection):
        if request.target == "/page/fine":
            return pages(request, connection)
        connection.send(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n".encode()
                        + b"0123456789")
        return None

    app = apps(keep_alive(cut_short))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        started = time.monotonic()
        browser.send(browser.request("GET", "/cut"))
        response = browser.read_response(strict=False)
        assert browser.eof and time.monotonic() - started < WAIT
        assert response.status == 200 and not response.complete, response
        assert response.body.startswith(b"0123456789") or response.body == b"", response
        if content_type == "text/plain":
            assert response.header("content-length") == "1000", response
        # Beacon goes on.
        fresh = Browser(beacon)
        assert_injected_once(fresh.get("/page/fine"), page("fine"))
        fresh.close()
        beacon_status_ok(beacon)
        browser.close()


# MARK: - 9. A browser that leaves a stream


def test_a_browser_leaving_an_endless_answer_closes_the_apps_connection(tmp_path, apps):
    def endless(connection: AppConnection):
        if connection.read_request() is None:
            return
        if not connection.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"):
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = f"tick {time.time()}\n".encode()
            if not connection.send(f"{len(line):x}\r\n".encode() + line + b"\r\n"):
                return
            if connection.peer_left(0.05):  # one piece every 50 ms, until Beacon lets go
                return

    app = apps(endless)
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/ticks"))
        deadline = time.monotonic() + WAIT
        while browser.seen.count(b"tick ") < 5:
            assert browser._more(deadline), f"the stream ended: {browser.seen!r}"
        assert b"Transfer-Encoding: chunked" in browser.seen and TAG not in browser.seen
        browser.close()
        left = time.monotonic()
        app.wait_for(lambda: any(c.requests and c.ended for c in app.connections),
                     "the app's connection closed after the browser left", timeout=5)
        print(f"the app's connection ended ({[c.ended for c in app.connections if c.requests]}) "
              f"{time.monotonic() - left:.3f} s after the browser left")
        beacon_status_ok(beacon)


def test_a_browser_aborting_before_the_app_answers_closes_the_apps_connection(tmp_path, apps):
    """A browser that aborts (a reset: the tab closed with bytes unread) before the app's answer.
    (A plain close is a half-close too, after which a client may still wait for its answer: that
    one the app's answer is waited for, on both of Beacon's paths.)"""
    def thinking(connection: AppConnection):
        if connection.read_request() is None:
            return
        connection.peer_left(30)  # no answer: the app works on it until Beacon lets go

    app = apps(thinking)
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/slow"))
        app.wait_for(lambda: len(app.requests) == 1, "the request reached the app")
        browser.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        browser.close()
        app.wait_for(lambda: any(c.requests and c.ended for c in app.connections),
                     "the app's connection closed after the browser left", timeout=5)
        beacon_status_ok(beacon)


def test_a_client_that_half_closes_after_its_request_gets_the_whole_answer_then_the_close(tmp_path, apps):
    def slow_pages(request, connection):
        time.sleep(0.3)  # the app's think time
        return pages(request, connection)

    app = apps(keep_alive(slow_pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/half") + browser.request("GET", "/data.json"))
        browser.sock.shutdown(socket.SHUT_WR)  # as `nc -N` and some scripts do
        assert_injected_once(browser.read_response(), page("half"))
        assert browser.read_response().body == b'{"k": "v",  "n": [1,2,3]}\n'
        assert browser.closes_within(WAIT), "Beacon kept a connection whose client has nothing more to send"
        browser.close()


def test_a_post_pipelined_behind_a_proxied_get_reaches_the_app_with_its_body(tmp_path, apps):
    def with_bodies(connection: AppConnection):
        while (request := connection.read_request()) is not None:
            if request.method == "POST":
                length = int(request.headers.get("content-length", "0"))
                while len(connection.buffer) < length:
                    data = connection.sock.recv(65536)
                    if not data:
                        return
                    connection.buffer += data
                body, connection.buffer = connection.buffer[:length], connection.buffer[length:]
                reply = json.dumps({"length": len(body), "sum": sum(body) % 65536}).encode()
                data = answer(reply, content_type="application/json")
            else:
                time.sleep(0.2)  # the GET's answer is on its way while the POST arrives
                data = pages(request, connection)
            if not connection.send(data):
                return

    app = apps(with_bodies)
    payload = bytes(range(256)) * 1024  # 256 KiB
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        post = (f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{browser.port}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
        browser.send(browser.request("GET", "/page/first") + post + browser.request("GET", "/page/last"))
        assert_injected_once(browser.read_response(), page("first"))
        echoed = browser.read_response()
        assert echoed.status == 200 and json.loads(echoed.body) == {"length": len(payload),
                                                                    "sum": sum(payload) % 65536}, echoed
        assert_injected_once(browser.read_response(), page("last"))
        assert app.targets() == ["/page/first", "/echo", "/page/last"]
        browser.close()


def open_connections(beacon) -> int:
    """Beacon's open connections (`connections` of /__beacon/status), this one's included."""
    browser = Browser(beacon)
    try:
        response = browser.get("/__beacon/status")
        assert response.status == 200, response
        return json.loads(response.body)["connections"]
    finally:
        browser.close()


@pytest.mark.parametrize("version, headers", [("HTTP/1.1", ("Connection: close",)), ("HTTP/1.0", ())],
                         ids=["1.1 Connection: close", "1.0"])
def test_requests_pipelined_behind_an_answer_that_closes_are_dropped_and_the_connection_ends(tmp_path, apps,
                                                                                             version, headers):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/data.json", version=version, headers=headers)
                     + browser.request("GET", "/page/b") + browser.request("GET", "/page/c"))
        response = browser.read_response()
        assert response.body == b'{"k": "v",  "n": [1,2,3]}\n', response
        assert response.header("connection") in (None, "close"), response
        assert browser.closes_within(WAIT), f"more after an answer that closes: {browser.seen!r}"
        assert browser.buffer == b"", f"an answer after one that closes: {browser.buffer!r}"
        browser.close()
        # Beacon lets the connection go once the browser closes its side too.
        deadline = time.monotonic() + 5
        while (count := open_connections(beacon)) > 1:
            assert time.monotonic() < deadline, f"{count - 1} connection(s) still open 5 s after the browser closed"
            time.sleep(0.05)  # between reads of /__beacon/status
        assert app.targets() == ["/data.json"]


# MARK: - 10. 204 and 304


def test_204_and_304_pass_without_a_body_and_the_connection_goes_on(tmp_path, apps):
    def bodiless(request, connection):
        if request.target == "/not-modified":
            # A 304 may carry the length the page would have: it still has no body.
            return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 500\r\n\r\n'
        if request.target == "/no-content":
            return b"HTTP/1.1 204 No Content\r\nX-App: yes\r\n\r\n"
        return pages(request, connection)

    app = apps(keep_alive(bodiless))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        response = browser.get("/not-modified", headers=('If-None-Match: "v1"',))
        assert response.status == 304 and response.header("etag") == '"v1"', response
        assert response.header("transfer-encoding") is None, response
        response = browser.get("/no-content")
        assert response.status == 204 and response.header("x-app") == "yes", response
        assert response.header("transfer-encoding") is None, response
        # No body after either: the next bytes are the next answer.
        assert_injected_once(browser.get("/page/after"), page("after"))
        # Pipelined, too.
        browser.send(browser.request("GET", "/no-content") + browser.request("GET", "/not-modified")
                     + browser.request("GET", "/page/last"))
        assert browser.read_response().status == 204
        assert browser.read_response().status == 304
        assert_injected_once(browser.read_response(), page("last"))
        assert app.used() == 1
        browser.close()


# MARK: - 11. Header rules


def test_cookies_and_a_location_naming_the_app_are_rewritten_hop_by_hop_fields_dropped(tmp_path, apps):
    def redirects(request, connection):
        target = request.target.split("to=", 1)[1] if "to=" in request.target else ""
        location = f"http://{target}/landing?x=1" if target else "/landing?x=1"
        return answer(b"", status="302 Found", content_type="text/html; charset=utf-8", headers=(
            f"Location: {location}",
            'Set-Cookie: session="a b"; Domain=127.0.0.1; Secure; HttpOnly; Path=/; SameSite=Lax',
            "Set-Cookie: theme=dark; Path=/; SameSite=Strict",
            "Set-Cookie: other=1; Domain=example.test; Path=/",
            "Connection: X-Secret",
            "X-Secret: for this hop only",
            "Keep-Alive: timeout=5",
        ))

    app = apps(keep_alive(redirects))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        response = browser.get(f"/redirect?to=127.0.0.1:{app.port}")
        assert response.status == 302, response
        assert response.header("location") == beacon.base_url + "landing?x=1", response
        cookies = ['session="a b"; Secure; HttpOnly; Path=/; SameSite=Lax', "theme=dark; Path=/; SameSite=Strict",
                   "other=1; Domain=example.test; Path=/"]
        assert response.all("set-cookie") == cookies, response
        for name in ("x-secret", "keep-alive"):
            assert response.header(name) is None, response
        assert response.header("connection") in (None, "keep-alive"), response
        # Another origin, and a path, stay as the app wrote them.
        response = browser.get("/redirect?to=elsewhere.test:9")
        assert response.header("location") == "http://elsewhere.test:9/landing?x=1", response
        response = browser.get("/redirect")
        assert response.header("location") == "/landing?x=1", response
        # The same rules as the router's proxy (POST takes that path).
        browser.send(f"POST /redirect?to=127.0.0.1:{app.port} HTTP/1.1\r\nHost: 127.0.0.1:{browser.port}\r\n"
                     f"Content-Length: 0\r\n\r\n".encode())
        routed = browser.read_response()  # (the app reads no body here: an empty one is fine)
        assert routed.header("location") == beacon.base_url + "landing?x=1", routed
        assert routed.all("set-cookie") == cookies, routed
        browser.close()


# MARK: - 12. An app that is not up yet


def test_an_app_not_running_is_a_502_then_its_page_once_it_listens(tmp_path, apps):
    port = _free_port()
    with beacon_for(tmp_path, port) as beacon:
        browser = Browser(beacon)
        started = time.monotonic()
        response = browser.get("/page/x")
        elapsed = time.monotonic() - started
        assert response.status == 502 and elapsed < 8, (elapsed, response)
        assert f"nothing answers at http://127.0.0.1:{port}".encode() in response.body, response
        app = apps(keep_alive(pages), port=port)
        # The same browser connection, and a new one, get the app's page.
        assert_injected_once(browser.get("/page/up"), page("up"))
        fresh = Browser(beacon)
        assert_injected_once(fresh.get("/page/up2"), page("up2"))
        fresh.close()
        browser.close()
        assert app.targets() == ["/page/up", "/page/up2"]


def test_a_drain_answers_a_request_waiting_for_an_app_that_is_down_with_the_502_page_at_once(tmp_path):
    """SIGTERM while a request waits for an app that does not answer (Beacon retries for 5 s): the
    wait ends with the drain, the browser gets the 502 page, and Beacon exits well within the
    drain's 5 s. Before, the wait held the shutdown for its whole time and the drain's bound cut
    the connection with no answer at all."""
    port = _free_port()
    with beacon_for(tmp_path, port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/x"))
        # The signal goes once Beacon has read the request: one that is still in the socket when
        # the drain starts is on a connection that looks idle, which a drain closes unanswered.
        deadline = time.monotonic() + WAIT
        while beacon_unread(browser.sock) != 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert beacon_unread(browser.sock) == 0, "Beacon did not read the request"
        beacon.process.send_signal(signal.SIGTERM)
        # Before, no answer came: the connection ended at the drain's bound.
        response = browser.read_response(timeout=WAIT)
        assert response.status == 502, response
        assert f"nothing answers at http://127.0.0.1:{port}".encode() in response.body, response
        assert beacon.process.wait(timeout=WAIT) == 0
        browser.close()


def test_an_app_restarting_between_requests_of_a_kept_browser_connection(tmp_path, apps):
    first = apps(keep_alive(pages))
    port = first.port
    with beacon_for(tmp_path, port) as beacon:
        browser = Browser(beacon)
        assert_injected_once(browser.get("/page/before"), page("before"))
        first.stop()  # the app goes away, its connections with it
        # While it is down, two pipelined requests; it is back 0.5 s later, within the retry time.
        browser.send(browser.request("GET", "/page/during1") + browser.request("GET", "/page/during2"))
        time.sleep(0.5)  # the app's restart time, not a wait for a condition
        second = apps(keep_alive(pages), port=port)
        assert_injected_once(browser.read_response(), page("during1"))
        assert_injected_once(browser.read_response(), page("during2"))
        assert_injected_once(browser.get("/page/after"), page("after"))
        assert second.targets() == ["/page/during1", "/page/during2", "/page/after"]
        browser.close()


# MARK: - More: what real apps send


def test_early_hints_before_the_answer_are_no_502(tmp_path, apps):
    def hints(request, connection):
        connection.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
        return pages(request, connection)

    app = apps(keep_alive(hints))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        response = browser.get("/page/hinted")
        while response.status == 103:  # passing the hint on is allowed; the answer follows it
            response = browser.read_response()
        assert_injected_once(response, page("hinted"))
        assert_injected_once(browser.get("/page/again"), page("again"))
        assert app.used() == 1
        browser.close()


def test_an_app_that_closes_after_every_answer_still_serves_a_kept_browser_connection(tmp_path, apps):
    def closing(request, connection):
        if request.target == "/old":
            # An HTTP/1.0 app: no length, the body ends at the close.
            connection.send(b"HTTP/1.0 200 OK\r\nContent-Type: application/javascript\r\n\r\nconsole.log(1);\n")
            return None
        connection.send(answer(page(request.target.rsplit("/", 1)[1]), headers=("Connection: close",)))
        return None

    app = apps(keep_alive(closing))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        assert_injected_once(browser.get("/page/one"), page("one"))
        response = browser.get("/old")
        assert response.status == 200 and response.body == b"console.log(1);\n", response
        assert response.header("connection") in (None, "keep-alive"), response
        assert_injected_once(browser.get("/page/two"), page("two"))
        assert app.used() == 3
        browser.close()


def beacon_unread(sock: socket.socket):
    """Bytes sent on `sock` (the app's or a browser's connection to Beacon) that Beacon has not
    read yet: the receive queue of Beacon's end of it, from /proc/net/tcp (both ends are on
    127.0.0.1); None if not found."""
    beacon_port, own_port = sock.getpeername()[1], sock.getsockname()[1]
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if (local, remote) == (beacon_port, own_port):
                return int(fields[4].split(":")[1], 16)
    return None


@pytest.mark.parametrize("kind", ["chunked, Connection: close", "HTTP/1.0 to the close", "page, HTTP/1.0 to the close",
                                  "chunked, kept open"])
def test_an_app_closing_right_after_its_answer_to_a_browser_that_is_behind_loses_nothing(tmp_path, apps, kind):
    """The browser is slow to read, so Beacon stops reading the app (its back-pressure: memory
    stays flat); the app then ends its answer and closes at once, as an HTTP/1.0 server or one
    that says `Connection: close` does. The close comes after the answer's last byte: the browser
    must get all of it. ("chunked, kept open" is the same answer from an app that keeps its
    connection.)"""
    html = kind.startswith("page")
    # 64 KiB; a page's text (NUL bytes would make it look like UTF-16, which is left uninjected)
    piece = b"<p>0123456789abcdef</p>\n" * 2730 + b"0123456789abcdef\n"[:(64 << 10) - 24 * 2730] if html else bytes(range(256)) * 256
    chunked_answer = kind.startswith("chunked")
    if chunked_answer:
        head = answer(b"", content_type="application/octet-stream", length=False,
                      headers=("Transfer-Encoding: chunked",) + (("Connection: close",) if "close" in kind else ()))
        frame = lambda data: f"{len(data):x}\r\n".encode() + data + b"\r\n"  # noqa: E731
    else:
        head = answer(b"", content_type="text/html" if html else "application/octet-stream", length=False,
                      version="HTTP/1.0")
        frame = lambda data: data  # noqa: E731
    start, ending = (b"<!doctype html><html><body><pre>", b"</pre></body></html>") if html else (b"", b"tail")
    ended = threading.Event()
    outcome = {}

    def writer(connection: AppConnection):
        if connection.read_request() is None:
            return
        connection.send(head + frame(start) if start else head)
        sent = len(start)
        # One piece at a time, until Beacon leaves one unread for 0.3 s: it has stopped reading
        # (bounded: 256 pieces, 16 MiB, far past Beacon's 512 KiB allowance and the sockets').
        for _ in range(256):
            connection.send(frame(piece))
            sent += len(piece)
            last, since = None, time.monotonic()
            while True:
                unread = beacon_unread(connection.sock)
                if not unread:
                    break
                if unread != last:
                    last, since = unread, time.monotonic()
                elif time.monotonic() - since > 0.3:
                    outcome["stopped after"] = sent
                    break
                time.sleep(0.005)  # polling the kernel's table
            if "stopped after" in outcome:
                break
        # The end of the answer, and (but for the control) the close, at once.
        connection.send(frame(ending) + (b"0\r\n\r\n" if chunked_answer else b""))
        outcome["length"] = sent + len(ending)
        if "kept open" not in kind:
            connection.sock.shutdown(socket.SHUT_WR)
        ended.set()
        connection.peer_left(60)

    app = apps(writer)
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon, receive_buffer=16 << 10)
        browser.send(browser.request("GET", "/big"))
        assert ended.wait(60), "the app did not get to the end of its answer"
        assert "stopped after" in outcome, "Beacon read 16 MiB from the app for a browser that read nothing"
        response = browser.read_response(strict=False, timeout=60)
        assert response.status == 200, response
        expected = outcome["length"] + (len(TAG) if html else 0)
        assert response.complete and len(response.body) == expected, (
            f"{len(response.body)} of {expected} bytes (Beacon stopped reading the app after "
            f"{outcome['stopped after']}), then the connection ended\n{beacon.log()[-3000:]}")
        assert response.body.endswith(TAG + b"</body></html>" if html else piece + b"tail"), response.body[-200:]
        browser.close()


def test_a_large_sized_answer_the_app_closes_after_reaches_a_slow_browser_whole(tmp_path, apps):
    """As above with a `Content-Length` answer and `Connection: close`: the app writes all of it at
    once and closes while the browser (slow: a read every 5 ms) is behind. Where Beacon stands
    when the close arrives depends on the sockets' buffers, so several sizes around them are
    tried; every one must arrive whole."""
    bodies = {}

    def writer(connection: AppConnection):
        request = connection.read_request()
        if request is None:
            return
        body = bodies[request.target]
        connection.send(answer(body, content_type="application/octet-stream", headers=("Connection: close",)))
        connection.sock.shutdown(socket.SHUT_WR)
        connection.peer_left(60)

    app = apps(writer)
    with beacon_for(tmp_path, app.port) as beacon:
        for megabytes in (3, 4, 5, 6):
            target = f"/big/{megabytes}"
            bodies[target] = bytes(range(256)) * (megabytes << 12)
            browser = Browser(beacon, receive_buffer=16 << 10, pace=0.005)
            browser.send(browser.request("GET", target))
            response = browser.read_response(strict=False, timeout=60)
            assert response.status == 200, response
            assert response.complete and response.body == bodies[target], (
                f"{megabytes} MiB: {len(response.body)} of {len(bodies[target])} bytes, then the connection "
                f"ended\n{beacon.log()[-3000:]}")
            browser.close()


def test_a_browser_asking_to_close_gets_its_answer_then_the_close(tmp_path, apps):
    app = apps(keep_alive(pages))
    with beacon_for(tmp_path, app.port) as beacon:
        browser = Browser(beacon)
        browser.send(browser.request("GET", "/page/bye", headers=("Connection: close",)))
        response = browser.read_response()
        assert_injected_once(response, page("bye"))
        assert response.header("connection") == "close", response
        assert browser.closes_within(WAIT)
        browser.close()


def test_with_cors_a_listed_origins_request_gets_beacons_cors_headers(tmp_path, apps):
    """`--cors` is answered by the router's CORS middleware: a request with an Origin goes there
    (as a cached file's does), so the app's answer carries Beacon's CORS headers on either path."""
    app = apps(keep_alive(pages))
    with beacon_server(tmp_path, site_dir=False, extra_args=(
            "--proxy", f"http://127.0.0.1:{app.port}", "--cors", "http://other.test")) as beacon:
        browser = Browser(beacon)
        try:
            response = browser.get("/data.json", headers=("Origin: http://other.test",))
            assert response.status == 200, response
            assert ("access-control-allow-origin", "http://other.test") in response.fields, response.fields
            # Without an Origin the route to the app is the front door's, and says nothing of CORS.
            response = browser.get("/data.json")
            assert not any(name == "access-control-allow-origin" for name, _ in response.fields), response.fields
        finally:
            browser.close()
