"""Black-box HTTP/1.1 conformance tests of Beacon's request front door, over raw sockets.

Every test talks to a real `beacon serve --token s3cret` on 127.0.0.1 with hand-written bytes and
parses the answers itself (status line, fields, Content-Length or chunked body, or up to the close),
so nothing between the test and the server normalises the request. Each table says where its
answers come from:

  host rules ........... RFC 9112 §3.2 (Host), §3.2.2 (absolute-form), §3.2.3 (authority-form),
                         §3.2.4 (asterisk-form); RFC 9110 §4.2.1 (empty http authority), §7.2;
                         the allowlist is Beacon's policy (README, Security): foreign name -> 403
  request syntax ....... RFC 9112 §2.2, §3 (request line), §5.1-5.2 (field lines, obs-fold);
                         RFC 9110 §2.5 (HTTP version), §5.5 (NUL / CR in field values)
  limits ............... Beacon's limits (README): target 8 KiB -> 414, header section 16 KiB -> 431
  framing / smuggling .. RFC 9112 §6.1 (Transfer-Encoding), §6.3 (message body length), §7.1
                         (chunked); RFC 9110 §8.6 (Content-Length)
  Expect ............... RFC 9110 §10.1.1
  publish auth / body .. RFC 9110 §11.1, §11.4, §11.6.1; RFC 6750 §2.1; Beacon's publish API (README)
  If-Modified-Since .... RFC 9110 §13.1.3, §5.6.7 (HTTP-date)
  encodings ............ Beacon's injection (README); WHATWG Encoding (BOM sniffing)

A case whose request the server must refuse also checks that the refusal is not vacuous: the bad
part is put where a lenient parser would have answered differently (usually 200 or 202), and
framing errors carry a smuggled request behind them that must never get an answer. Each test ends
by checking that a fresh `GET /` still gets 200. One server serves the whole module; if a case
kills it, the next test starts a new one (and the killing case fails on its liveness check).
"""

import datetime
import json
import re
import select
import socket
import time
from dataclasses import dataclass

import pytest
from conftest import beacon_server

IO_TIMEOUT = 5.0  # seconds for one response (and the socket timeout; <= 10 s)
CLOSE_WAIT = 3.0  # seconds the server gets to close a connection it must close (< its 10 s idle timeout)
QUIET_WAIT = 1.0  # seconds during which "nothing arrives" must hold
FILE_WAIT = 10.0  # seconds for a file written into the site to be served
MAX_RESPONSES = 20  # bound on responses read from one connection
SHOW = 300  # bytes of the request and the answer shown in failure messages

TOKEN = "s3cret"
AUTH = f"Authorization: Bearer {TOKEN}"
JSON_CT = "Content-Type: application/json"
INJECTED = '<script src="/__beacon/client.js"></script>'

STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?")


# --- raw HTTP helpers --------------------------------------------------------------------------


def show(data: bytes) -> str:
    text = repr(bytes(data[:SHOW]))
    return text if len(data) <= SHOW else f"{text} ... ({len(data)} bytes in all)"


def raw(request_line: str, *fields: str, body: bytes = b"") -> bytes:
    """A request template: the request line, field lines and CRLFs exactly as given, then `body`.

    `{host}` (127.0.0.1:PORT), `{port}` and `{path}` are filled in by Live.fill."""
    return ("\r\n".join((request_line, *fields)) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@dataclass
class Response:
    version: str
    status: int
    reason: str
    fields: list  # [(lower-case name, value)]
    body: bytes

    def header(self, name: str):
        return next((v for n, v in self.fields if n == name.lower()), None)

    def headers(self, name: str) -> list:
        return [v for n, v in self.fields if n == name.lower()]


class Conn:
    """One raw TCP connection to the server. It keeps every byte sent and received, for failures."""

    def __init__(self, port: int, nodelay: bool = False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.sent = bytearray()
        self.received = bytearray()
        self.eof = False
        self.reset = False
        self.sent_mark = 0  # where the last request sent starts in self.sent
        self.got_mark = 0  # where the response being read starts in self.received

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def explain(self, what: str) -> str:
        """`what`, then the last request sent and what came back for it (earlier exchanges on the
        connection are only counted)."""
        end = " [the server reset the connection]" if self.reset else (" [closed by the server]" if self.eof else "")
        before_sent = f"(after {self.sent_mark} bytes sent before) " if self.sent_mark else ""
        before_got = f"(after {self.got_mark} bytes of earlier answers) " if self.got_mark else ""
        return (f"{what}\n  sent: {before_sent}{show(self.sent[self.sent_mark:])}"
                f"\n  got:  {before_got}{show(self.received[self.got_mark:])}{end}")

    def fail(self, what: str):
        pytest.fail(self.explain(what))

    def send(self, data: bytes, tolerate_close: bool = False, new_request: bool = True) -> bool:
        """Sends all of `data`; with tolerate_close, a server that already closed is not an error.
        new_request=False: `data` continues the request sent before (for failure messages)."""
        if new_request:
            self.sent_mark = len(self.sent)
        self.sent += data
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as error:
            if not tolerate_close:
                self.fail(f"the server closed the connection while we were sending ({error})")
            return False
        return True

    def _fill(self, deadline: float) -> str:
        """Reads what is there: 'data', 'eof' (closed or reset) or 'timeout'."""
        if self.eof:
            return "eof"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        self.sock.settimeout(min(remaining, IO_TIMEOUT))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            self.reset = self.eof = True
            return "eof"
        if not chunk:
            self.eof = True
            return "eof"
        self.buf += chunk
        self.received += chunk
        return "data"

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            state = self._fill(deadline)
            if state != "data":
                self.fail(f"the body ended early ({state}) with {len(self.buf)} of {n} bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            state = self._fill(deadline)
            if state != "data":
                self.fail(f"a chunked body ended early ({state})")
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    def quiet(self, seconds: float) -> bool:
        """True if nothing at all arrives (and the connection stays open) for `seconds`."""
        if self.buf:
            return False
        return self._fill(time.monotonic() + seconds) == "timeout"

    def response(self, method: str = "GET", timeout: float = IO_TIMEOUT):
        """The next response, or None if the server closed without starting one."""
        deadline = time.monotonic() + timeout
        self.got_mark = len(self.received) - len(self.buf)
        while b"\r\n\r\n" not in self.buf:
            state = self._fill(deadline)
            if state == "timeout":
                self.fail(f"no complete response head within {timeout:.0f} s")
            if state == "eof":
                if not self.buf:
                    return None
                self.fail("the connection ended inside a response head")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        if not match:
            self.fail(f"not an HTTP/1.x status line: {lines[0]!r}")
        fields = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                self.fail(f"a response field line without a colon: {line!r}")
            fields.append((name.decode("latin-1").lower(), value.decode("latin-1").strip()))
        resp = Response(f"{match[1].decode()}.{match[2].decode()}", int(match[3]),
                        (match[4] or b"").decode("latin-1"), fields, b"")
        te = (resp.header("transfer-encoding") or "").lower()
        length = resp.header("content-length")
        if resp.status < 200 or resp.status in (204, 304) or method == "HEAD":
            pass
        elif (resp.header("content-type") or "").startswith("text/event-stream"):
            pass  # an open event stream: the head is the answer
        elif "chunked" in te:
            body = bytearray()
            for _ in range(100_000):
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):  # trailer section
                        pass
                    break
                body += self._take(size, deadline)
                self._line(deadline)
            resp.body = bytes(body)
        elif length is not None:
            resp.body = self._take(int(length), deadline)
        else:
            while self._fill(deadline) == "data":
                pass
            if not self.eof:
                self.fail(f"a body without a length did not end within {timeout:.0f} s")
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    def responses(self, wait: float = CLOSE_WAIT):
        """Every response until the server closes -> (responses, True), or until `wait` s pass with
        nothing new -> (responses, False)."""
        found = []
        for _ in range(MAX_RESPONSES):
            deadline = time.monotonic() + wait
            while not self.buf:
                state = self._fill(deadline)
                if state == "eof":
                    return found, True
                if state == "timeout":
                    return found, False
            found.append(self.response())
        self.fail(f"more than {MAX_RESPONSES} responses on one connection")


def expect_status(conn: Conn, resp, allowed, what: str = "") -> Response:
    allowed = {allowed} if isinstance(allowed, int) else set(allowed)
    want = " or ".join(map(str, sorted(allowed)))
    if resp is None:
        conn.fail(f"{what}: expected {want}, but the server closed the connection without an answer")
    if resp.status not in allowed:
        conn.fail(f"{what}: expected {want}, got {resp.status} {resp.reason}")
    return resp


# --- the server --------------------------------------------------------------------------------


class Live:
    def __init__(self, server):
        self.server = server
        self.port = int(server.base_url.rstrip("/").rsplit(":", 1)[1])
        self.host = f"127.0.0.1:{self.port}"

    def connect(self, nodelay: bool = False) -> Conn:
        return Conn(self.port, nodelay=nodelay)

    def fill(self, template: bytes, path: str = "/") -> bytes:
        return (template.replace(b"{host}", self.host.encode()).replace(b"{port}", str(self.port).encode())
                .replace(b"{path}", path.encode()))

    def get(self, path: str, *fields: str, expect=200) -> Response:
        """A plain GET on a fresh connection; expects `expect`."""
        with self.connect() as conn:
            conn.send(self.fill(raw(f"GET {path} HTTP/1.1", "Host: {host}", *fields)))
            return expect_status(conn, conn.response(), expect, f"GET {path}")

    def warm(self, *paths: str) -> None:
        """Serves each path once, so the next requests for it take the cached path."""
        for path in paths:
            self.get(path)

    def assert_alive(self) -> None:
        if self.server.process.poll() is not None:
            pytest.fail(f"beacon exited (status {self.server.process.returncode})\n{self.server.log()[-3000:]}")
        with self.connect() as conn:
            conn.send(self.fill(raw("GET / HTTP/1.1", "Host: {host}", "Connection: close")))
            expect_status(conn, conn.response(), 200, "liveness: a fresh GET / after the hostile case")

    def wait_served(self, path: str) -> Response:
        deadline = time.monotonic() + FILE_WAIT
        last = None
        while time.monotonic() < deadline:
            with self.connect() as conn:
                conn.send(self.fill(raw(f"GET {path} HTTP/1.1", "Host: {host}", "Connection: close")))
                last = conn.response()
            if last is not None and last.status == 200:
                return last
            time.sleep(0.05)  # poll interval while waiting for the watcher
        pytest.fail(f"{path} was not served with 200 within {FILE_WAIT:.0f} s (last: {last and last.status})")


class _Pool:
    """One `beacon serve --token s3cret` for the module, started again if a case killed it."""

    def __init__(self, factory):
        self.factory = factory
        self.context = None
        self.live = None
        self.starts = 0

    def get(self) -> Live:
        if self.live is None or self.live.server.process.poll() is not None:
            self.close()
            self.starts += 1
            tmp = self.factory.mktemp(f"rfc9112-{self.starts}")
            self.context = beacon_server(tmp, name="site", extra_args=("--token", TOKEN))
            self.live = Live(self.context.__enter__())
        return self.live

    def close(self) -> None:
        if self.context is not None:
            context, self.context, self.live = self.context, None, None
            context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def _pool(tmp_path_factory):
    pool = _Pool(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture
def srv(_pool) -> Live:
    live = _pool.get()
    yield live
    live.assert_alive()  # after every hostile case the server keeps serving


GET_INDEX = raw("GET /index.html HTTP/1.1", "Host: {host}")
GET_MISSING = raw("GET /missing-page HTTP/1.1", "Host: {host}")
SMUGGLED = raw("GET /__beacon/status HTTP/1.1", "Host: {host}")


def index_body(srv: Live) -> bytes:
    return srv.get("/index.html").body


# --- 1-3. Host (RFC 9112 §3.2) -----------------------------------------------------------------

MISSING_HOST = [
    # id, request, expected status
    ("http11-no-host", raw("GET / HTTP/1.1"), 400),  # §3.2: MUST 400
    ("http10-no-host", raw("GET / HTTP/1.0"), 200),
    ("http10-foreign-host", raw("GET / HTTP/1.0", "Host: evil.example"), 403),  # allowlist
]


@pytest.mark.parametrize("request_bytes, status", [c[1:] for c in MISSING_HOST], ids=[c[0] for c in MISSING_HOST])
def test_missing_host(srv, request_bytes, status):
    with srv.connect() as conn:
        conn.send(srv.fill(request_bytes))
        expect_status(conn, conn.response(), status, "request")


DUP_TARGETS = ["/", "/index.html", "/__beacon/events", "/__beacon/status", "/__beacon/client.js"]
DUP_VALUES = {"same": ("{host}", "{host}"), "different": ("{host}", "localhost:{port}")}
# The request in front of the duplicated Host on the same keep-alive connection, and its answer.
DUP_POSITIONS = {
    "first": None,
    "after-200": (GET_INDEX, 200, False),
    "after-200-pipelined": (GET_INDEX, 200, True),
    "after-404": (GET_MISSING, 404, False),
    "after-404-pipelined": (GET_MISSING, 404, True),
}


@pytest.mark.parametrize("position", list(DUP_POSITIONS))
@pytest.mark.parametrize("values", list(DUP_VALUES))
@pytest.mark.parametrize("target", DUP_TARGETS)
def test_two_host_fields(srv, target, values, position):
    """§3.2: more than one Host field line -> 400, on every path the server has (cached or not)."""
    srv.warm("/index.html", *(t for t in DUP_TARGETS if t != "/__beacon/events"))
    first, second = DUP_VALUES[values]
    bad = srv.fill(raw(f"GET {target} HTTP/1.1", f"Host: {first}", f"Host: {second}"))
    with srv.connect() as conn:
        lead = DUP_POSITIONS[position]
        if lead is None:
            conn.send(bad)
        else:
            lead_request, lead_status, pipelined = lead
            if pipelined:
                conn.send(srv.fill(lead_request) + bad)
            else:
                conn.send(srv.fill(lead_request))
            expect_status(conn, conn.response(), lead_status, "the first, valid request")
            if not pipelined:
                conn.send(bad)
        expect_status(conn, conn.response(), 400, f"GET {target} with two Host fields ({values})")


HOST_VALUES = [
    # id, Host value, expected status. Invalid syntax -> 400 (§3.2); valid foreign -> 403; allowed -> 200.
    ("ipv6-trailing-junk", "[::1]x", 400),
    ("ipv6-junk-port", "[::1]junk:80", 400),
    ("ipv6-bad-literal", "[zz::1]", 400),
    ("space-inside", "exa mple", 400),
    ("slash", "host/path", 400),
    ("userinfo", "user@127.0.0.1", 400),
    # The next three are Beacon's policy more than RFC grammar: "," is a sub-delim, so this is a
    # syntactically valid reg-name (RFC 3986 §3.2.2); port = *DIGIT has no range (§3.2.3); and an
    # empty Host is what a client sends for a URI without authority, which a server "can reject"
    # (RFC 9112 §3.2, §3.3). 400 is an allowed answer for each; it is the one Beacon chose.
    ("comma-list", "127.0.0.1,evil.example", 400),
    ("port-junk", "127.0.0.1:80x", 400),
    ("port-out-of-range", "127.0.0.1:99999", 400),
    ("empty", "", 400),
    ("foreign", "evil.example", 403),
    ("foreign-port", "evil.example:8080", 403),
    ("foreign-ip-prefix", "127.0.0.1.evil.example", 403),
    ("localhost", "localhost", 200),
    ("localhost-upper-port", "LOCALHOST:1234", 200),
    ("ipv6-loopback", "[::1]", 200),
    ("ipv6-loopback-port", "[::1]:8080", 200),
    ("sub-localhost", "app.localhost", 200),
    ("loopback-other-port", "127.0.0.1:8080", 200),
]


@pytest.mark.parametrize("position", ["first-/", "first-cached", "keepalive-cached"])
@pytest.mark.parametrize("value, status", [c[1:] for c in HOST_VALUES], ids=[c[0] for c in HOST_VALUES])
def test_host_value(srv, value, status, position):
    srv.warm("/index.html")
    target = "/" if position == "first-/" else "/index.html"
    bad = f"GET {target} HTTP/1.1\r\nHost: {value}\r\n\r\n".encode("latin-1")
    with srv.connect() as conn:
        if position == "keepalive-cached":
            conn.send(srv.fill(GET_INDEX))
            expect_status(conn, conn.response(), 200, "the first, valid request")
        conn.send(bad)
        expect_status(conn, conn.response(), status, f"Host: {value!r}")


# --- 4. absolute-form (§3.2.2) -----------------------------------------------------------------

ABSOLUTE = [
    # id, request, expected status, whether the body must be /index.html's
    ("own-authority", raw("GET http://{host}/index.html HTTP/1.1", "Host: {host}"), 200, True),
    ("own-authority-foreign-host-field", raw("GET http://{host}/index.html HTTP/1.1", "Host: evil.example"), 200, True),
    ("foreign-authority", raw("GET http://evil.example/index.html HTTP/1.1", "Host: {host}"), 403, False),
    ("foreign-authority-events", raw("GET http://evil.example/__beacon/events HTTP/1.1", "Host: {host}"), 403, False),
    ("foreign-authority-status", raw("GET http://evil.example/__beacon/status HTTP/1.1", "Host: {host}"), 403, False),
    ("ftp-scheme", raw("GET ftp://127.0.0.1/ HTTP/1.1", "Host: {host}"), 400, False),
    ("empty-authority", raw("GET http:///index.html HTTP/1.1", "Host: {host}"), 400, False),  # RFC 9110 §4.2.1
    ("ipv6-trailing-junk", raw("GET http://[::1]x/ HTTP/1.1", "Host: {host}"), 400, False),
]


@pytest.mark.parametrize("position", ["first", "keepalive-cached"])
@pytest.mark.parametrize("request_bytes, status, same_body", [c[1:] for c in ABSOLUTE], ids=[c[0] for c in ABSOLUTE])
def test_absolute_form(srv, request_bytes, status, same_body, position):
    expected_body = index_body(srv)  # also warms the cache
    with srv.connect() as conn:
        if position == "keepalive-cached":
            conn.send(srv.fill(GET_INDEX))
            expect_status(conn, conn.response(), 200, "the first, valid request")
        conn.send(srv.fill(request_bytes))
        resp = expect_status(conn, conn.response(), status, "absolute-form request")
        if same_body and resp.body != expected_body:
            conn.fail(f"200, but not /index.html's body ({len(resp.body)} bytes, expected {len(expected_body)})")


# --- 5. asterisk-form and authority-form (§3.2.3, §3.2.4) --------------------------------------

FORMS = [
    # id, request, allowed statuses, a field the answer must carry
    # RFC 9110 §9.3.7: any successful answer (200, or 204 when there is no content), with Allow.
    ("options-asterisk", raw("OPTIONS * HTTP/1.1", "Host: {host}"), {200, 204}, "allow"),
    ("get-asterisk", raw("GET * HTTP/1.1", "Host: {host}"), {400}, None),
    # RFC 9110 §9.1: a method not allowed for the resource is 405; one not implemented at all is 501.
    ("connect", raw("CONNECT 127.0.0.1:80 HTTP/1.1", "Host: 127.0.0.1:80"), {405, 501}, None),
    ("get-authority-form", raw("GET 127.0.0.1:80 HTTP/1.1", "Host: {host}"), {400}, None),
]


@pytest.mark.parametrize("request_bytes, allowed, field", [c[1:] for c in FORMS], ids=[c[0] for c in FORMS])
def test_request_target_forms(srv, request_bytes, allowed, field):
    with srv.connect() as conn:
        conn.send(srv.fill(request_bytes))
        resp = expect_status(conn, conn.response(), allowed, "request")
        if field and resp.header(field) is None:
            conn.fail(f"{resp.status} without an {field} field")


# --- 6. request syntax (RFC 9112 §2.2, §3, §5) --------------------------------------------------

HOSTLINE = "Host: {host}"
SYNTAX = [
    # id, request ({path} is / or the cached /index.html), allowed statuses
    # §5.2 allows rejecting obs-fold (400) or unfolding it; Beacon rejects. Likewise NUL / bare CR in
    # a value (RFC 9110 §5.5, RFC 9112 §2.2: reject, or replace with SP).
    ("obs-fold-space", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note: a", " folded"), {400}),
    ("obs-fold-tab", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note: a", "\tfolded"), {400}),
    # Unfolding (§5.2's other option) gives Host "127.0.0.1:PORT evil.example": 400 either way.
    ("obs-fold-in-host", raw("GET {path} HTTP/1.1", HOSTLINE, " evil.example"), {400}),
    ("space-before-colon", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note : 1"), {400}),  # §5.1 MUST 400
    ("tab-before-colon", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note\t: 1"), {400}),
    ("no-colon", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note 1"), {400}),
    ("empty-name", raw("GET {path} HTTP/1.1", HOSTLINE, ": value"), {400}),
    ("paren-in-name", raw("GET {path} HTTP/1.1", HOSTLINE, "X-No(te: 1"), {400}),
    ("nul-in-value", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note: a\x00b"), {400}),
    ("bare-cr-in-value", raw("GET {path} HTTP/1.1", HOSTLINE, "X-Note: a\rb"), {400}),
    # RFC 9110 §5.5's other option (replace by SP) leaves an invalid Host: 400 either way.
    ("nul-in-host", raw("GET {path} HTTP/1.1", "Host: {host}\x00evil.example"), {400}),
    ("bare-cr-in-host", raw("GET {path} HTTP/1.1", "Host: {host}\rX-Evil: 1"), {400}),
    # RFC 9112 §3 lets a recipient parse the request line on whitespace word boundaries (MAY);
    # NIO's decoder (llhttp) does so for runs of spaces, and the target it reads is the same one
    # every later handler sees, so nothing can be read two ways. Tabs and trailing spaces: 400.
    ("two-spaces-after-method", raw("GET  {path} HTTP/1.1", HOSTLINE), {200, 400}),
    ("tab-after-method", raw("GET\t{path} HTTP/1.1", HOSTLINE), {400}),
    ("nul-in-target", raw("GET {path}\x00 HTTP/1.1", HOSTLINE), {400}),
    ("trailing-space", raw("GET {path} HTTP/1.1 ", HOSTLINE), {400}),
    ("lowercase-method", raw("get {path} HTTP/1.1", HOSTLINE), {400, 405, 501}),  # methods are case-sensitive
    ("http-2.0", raw("GET {path} HTTP/2.0", HOSTLINE), {400, 505}),
    # RFC 9110 §2.5: a higher minor version SHOULD be processed as 1.1; NIO's decoder (llhttp)
    # refuses it, which the SHOULD allows. Never answered as something else.
    ("http-1.2", raw("GET {path} HTTP/1.2", HOSTLINE), {200, 400, 505}),
]


@pytest.mark.parametrize("position", ["first-/", "keepalive-cached"])
@pytest.mark.parametrize("request_bytes, allowed", [c[1:] for c in SYNTAX], ids=[c[0] for c in SYNTAX])
def test_request_syntax(srv, request_bytes, allowed, position):
    srv.warm("/index.html")
    with srv.connect() as conn:
        path = "/"
        if position == "keepalive-cached":
            path = "/index.html"
            conn.send(srv.fill(GET_INDEX))
            expect_status(conn, conn.response(), 200, "the first, valid request")
        conn.send(srv.fill(request_bytes, path))
        expect_status(conn, conn.response(), allowed, "malformed request")


# --- 7. limits ----------------------------------------------------------------------------------


def test_header_section_over_16k_gets_431(srv):
    pads = [f"X-Pad-{i}: {'p' * 480}" for i in range(48)]  # ~24 KiB of field lines, each one short
    with srv.connect() as conn:
        conn.send(srv.fill(raw("GET / HTTP/1.1", HOSTLINE, *pads)), tolerate_close=True)
        expect_status(conn, conn.response(), 431, "a 24 KiB header section")


def test_target_over_8k_gets_414(srv):
    with srv.connect() as conn:
        conn.send(srv.fill(raw(f"GET /{'a' * 9000} HTTP/1.1", HOSTLINE)), tolerate_close=True)
        expect_status(conn, conn.response(), 414, "a 9 KB request target")


def test_one_20k_field_line_in_ten_sends_gets_431(srv):
    request = srv.fill(raw("GET / HTTP/1.1", HOSTLINE, "X-Big: " + "b" * 20_000))
    step = -(-len(request) // 10)
    with srv.connect(nodelay=True) as conn:
        for offset in range(0, len(request), step):
            if not conn.send(request[offset:offset + step], tolerate_close=True, new_request=offset == 0):
                break
            # Between pieces, wait briefly for an early answer (a server may answer at 16 KiB); this
            # also keeps the pieces in separate segments.
            if select.select([conn.sock], [], [], 0.02)[0]:
                break
        expect_status(conn, conn.response(), 431, "one 20 KB field line sent in 10 pieces")


def test_request_one_byte_per_send_gets_200(srv):
    request = srv.fill(raw("GET / HTTP/1.1", HOSTLINE, "User-Agent: slow", "Accept: */*"))
    with srv.connect(nodelay=True) as conn:
        for i in range(len(request)):
            conn.send(request[i:i + 1], new_request=i == 0)
            select.select([conn.sock], [], [], 0.002)  # let each byte go out on its own
        expect_status(conn, conn.response(), 200, "GET / sent one byte per send()")


# --- 8-10. framing and smuggling (RFC 9112 §6, §7.1) --------------------------------------------

VALID_JSON = b'{"data":"x"}'  # 12 bytes
assert len(VALID_JSON) == 12
PUBLISH = "POST /__beacon/publish HTTP/1.1"
PUBLISH_10 = "POST /__beacon/publish HTTP/1.0"
JSON_CHUNKED = chunked(b'{"channel":"t",', b'"data":"hi"}')

FRAMING = [
    # id, request (a smuggled GET follows it in the same send), status, whether the server MUST close.
    # Each is built so that a lenient reading answers differently: 202, or a second response.
    # §6.1: MAY reject CL + TE, and MUST close the connection after answering either way.
    ("cl-and-te", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, f"Content-Length: {len(JSON_CHUNKED)}",
                      "Transfer-Encoding: chunked", body=JSON_CHUNKED), 400, True),
    # §6.3 (5): an invalid Content-Length is an unrecoverable error: 400, then close.
    ("two-different-cl", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", "Content-Length: 13",
                             body=VALID_JSON), 400, True),
    ("cl-negative", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: -1", body=VALID_JSON), 400, True),
    ("cl-plus-sign", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: +12", body=VALID_JSON), 400, True),
    ("cl-exponent", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 1e3", body=VALID_JSON), 400, True),
    ("cl-hex", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 0x10", body=b'{"data":"xyzab"}'), 400, True),
    # §6.3 (4): chunked not the final coding -> 400, then close. `identity` is no longer a
    # registered coding and is not chunked either, so the same rule applies to it.
    ("te-gzip", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: gzip", body=JSON_CHUNKED), 400, True),
    ("te-identity", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: identity", body=VALID_JSON),
     400, True),
    # §6.1: chunked MUST NOT be applied twice.
    ("te-chunked-twice", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked, chunked",
                             body=JSON_CHUNKED), 400, False),
    # §6.1: Transfer-Encoding in an HTTP/1.0 message: faulty framing, and close the connection.
    ("te-in-http10", raw(PUBLISH_10, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked", body=JSON_CHUNKED),
     400, True),
    # §7.1: malformed chunk sizes; 400, not 413.
    ("chunk-size-zz", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked",
                          body=b"zz\r\n" + VALID_JSON + b"\r\n0\r\n\r\n"), 400, False),
    ("chunk-size-negative", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked",
                                body=b"-5\r\n{\"da\"\r\n0\r\n\r\n"), 400, False),
    ("chunk-size-overflow", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked",
                                body=b"fffffffffffffffffffff\r\n" + VALID_JSON + b"\r\n0\r\n\r\n"), 400, False),
]


@pytest.mark.parametrize("request_bytes, status, must_close", [c[1:] for c in FRAMING], ids=[c[0] for c in FRAMING])
def test_framing_errors(srv, request_bytes, status, must_close):
    """The refusal is the only answer on the connection: the smuggled GET behind it gets nothing."""
    with srv.connect() as conn:
        conn.send(srv.fill(request_bytes + SMUGGLED))
        found, closed = conn.responses()
        if not found:
            conn.fail(f"expected {status}, but no answer came within {CLOSE_WAIT:.0f} s"
                      f"{' (the server closed the connection)' if closed else ''}")
        expect_status(conn, found[0], status, "framing error")
        if len(found) > 1:
            conn.got_mark = 0
            conn.fail(f"the request smuggled behind the {status} got an answer too: "
                      f"{[r.status for r in found]}")
        if must_close and not closed:
            conn.fail(f"the connection was still open {CLOSE_WAIT:.0f} s after the {status}; "
                      "RFC 9112 §6 requires closing it")


TRANSFER_CODINGS = [
    # id, request, expected status
    # §6.1: a transfer coding the server does not implement -> 501 (chunked is last, so the
    # framing itself is known).
    ("te-gzip-chunked", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: gzip, chunked", body=JSON_CHUNKED), 501),
    ("chunked-json", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked", body=JSON_CHUNKED), 202),
    ("chunked-json-uppercase-te", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: Chunked",
                                      body=JSON_CHUNKED), 202),  # codings are case-insensitive (§7)
]


@pytest.mark.parametrize("request_bytes, status", [c[1:] for c in TRANSFER_CODINGS], ids=[c[0] for c in TRANSFER_CODINGS])
def test_transfer_codings(srv, request_bytes, status):
    with srv.connect() as conn:
        conn.send(srv.fill(request_bytes))
        expect_status(conn, conn.response(), status, "publish")


# --- 11. Expect (RFC 9110 §10.1.1) --------------------------------------------------------------


def test_expect_100_continue(srv):
    head = srv.fill(raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", "Expect: 100-continue"))
    with srv.connect() as conn:
        conn.send(head)
        interim = expect_status(conn, conn.response(), 100, "Expect: 100-continue, body not sent yet")
        if interim.version != "1.1":
            conn.fail(f"the 100 came as HTTP/{interim.version}")
        conn.send(VALID_JSON, new_request=False)
        expect_status(conn, conn.response(), 202, "the final answer once the body is sent")


def test_expect_100_continue_ignored_on_http10(srv):
    head = srv.fill(raw(PUBLISH_10, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", "Expect: 100-continue"))
    with srv.connect() as conn:
        conn.send(head)
        if not conn.quiet(QUIET_WAIT):
            conn.fail("HTTP/1.0 with Expect: 100-continue: something came before the body was sent")
        conn.send(VALID_JSON, new_request=False)
        expect_status(conn, conn.response(), 202, "the only answer, once the body is sent")


def test_unknown_expectation_gets_417(srv):
    with srv.connect() as conn:
        conn.send(srv.fill(raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", "Expect: something-else",
                               body=VALID_JSON)))
        expect_status(conn, conn.response(), 417, "Expect: something-else")


# --- 12-13. publish: token and bodies -----------------------------------------------------------

AUTHORIZATIONS = [
    # id, Authorization field line (or None), expected status.
    # RFC 9110 §11.1: the scheme is case-insensitive; §11.4 / RFC 6750 §2.1: 1*SP after it.
    ("bearer-lowercase", "Authorization: bearer s3cret", 202),
    ("bearer-uppercase", "Authorization: BEARER s3cret", 202),
    ("bearer-two-spaces", "Authorization: Bearer  s3cret", 202),
    ("bearer-wrong", "Authorization: Bearer wrong", 401),
    ("basic", "Authorization: Basic czNjcmV0", 401),
    ("none", None, 401),
]


def _publish(srv: Live, *fields: str, body: bytes) -> tuple:
    conn = srv.connect()
    conn.send(srv.fill(raw(PUBLISH, HOSTLINE, JSON_CT, f"Content-Length: {len(body)}", *fields, body=body)))
    return conn, conn.response()


@pytest.mark.parametrize("field, status", [c[1:] for c in AUTHORIZATIONS], ids=[c[0] for c in AUTHORIZATIONS])
def test_publish_authorization(srv, field, status):
    conn, resp = _publish(srv, *([field] if field else []), body=b'{"channel":"t","data":"x"}')
    with conn:
        expect_status(conn, resp, status, "publish")


@pytest.mark.parametrize("field", [c[1] for c in AUTHORIZATIONS if c[2] == 401],
                         ids=[c[0] for c in AUTHORIZATIONS if c[2] == 401])
def test_401_carries_a_challenge(srv, field):
    """RFC 9110 §11.6.1: a 401 MUST carry WWW-Authenticate with at least one challenge; RFC 6750 §3:
    for a bearer-token resource, a Bearer one."""
    conn, resp = _publish(srv, *([field] if field else []), body=b'{"channel":"t","data":"x"}')
    with conn:
        expect_status(conn, resp, 401, "publish")
        challenge = resp.header("www-authenticate") or ""
        if not challenge.lower().startswith("bearer"):
            conn.fail(f"401 with WWW-Authenticate {challenge!r}; expected a Bearer challenge")


BODIES = [
    # id, JSON body, expected status (400 answers carry {"error": ...})
    ("trailing-comma", b'{"channel":"t","data":"x",}', 400),
    ("trailing-junk", b'{"data":"x"} junk', 400),
    ("single-quotes", b"{'channel':'t','data':'x'}", 400),
    ("nan", b'{"channel":"t","data":NaN}', 400),
    ("comment", b'{"channel":"t", // note\n"data":"x"}', 400),
    ("unterminated-string", b'{"channel":"t","data":"x}', 400),
    ("unterminated-object", b'{"data":"x"', 400),
    ("valid-object-data", b'{"channel":"t","data":{"n":1}}', 202),
]


@pytest.mark.parametrize("body, status", [c[1:] for c in BODIES], ids=[c[0] for c in BODIES])
def test_publish_body(srv, body, status):
    conn, resp = _publish(srv, AUTH, body=body)
    with conn:
        expect_status(conn, resp, status, "publish")
        try:
            answer = json.loads(resp.body)
        except ValueError:
            conn.fail(f"{resp.status} without a JSON body")
        key = "error" if status == 400 else "id"
        if not isinstance(answer, dict) or key not in answer:
            conn.fail(f"{resp.status} without {key!r} in its JSON body")


# --- 14. If-Modified-Since (RFC 9110 §13.1.3, §5.6.7) ------------------------------------------
# 6 Nov 2094 is a Saturday and 6 Nov 2044 a Sunday: every date below names its real weekday, so an
# invalid one has exactly one defect. A recipient MUST ignore an invalid date (-> 200) and MUST
# accept all three formats; a future date is later than the file's Last-Modified (-> 304).

RFC850_FUTURE = datetime.datetime(datetime.date.today().year + 18, 11, 6, 8, 49, 37).strftime(
    "%A, %d-%b-%y %H:%M:%S GMT")  # C locale names, as HTTP-date wants

IMS = [
    ("word", "yesterday", 200),
    ("trailing-junk", "Sat, 06 Nov 2094 08:49:37 GMT junk", 200),
    ("day-32", "Sat, 32 Nov 2094 08:49:37 GMT", 200),
    ("hour-25", "Sat, 06 Nov 2094 25:00:00 GMT", 200),
    ("utc-not-gmt", "Sat, 06 Nov 2094 08:49:37 UTC", 200),
    ("two-spaces", "Sat,  06 Nov 2094 08:49:37 GMT", 200),
    ("iso-8601", "2094-11-06T08:49:37Z", 200),
    ("empty", "", 200),
    ("imf-fixdate", "Sat, 06 Nov 2094 08:49:37 GMT", 304),
    # Two-digit year 18 years ahead ("Sunday, 06-Nov-44 ..." in 2026): within 50 years, so in the future.
    ("rfc850-two-digit-year", RFC850_FUTURE, 304),
    ("asctime", "Sat Nov  6 08:49:37 2094", 304),
    ("own-last-modified", None, 304),
]


@pytest.mark.parametrize("value, status", [c[1:] for c in IMS], ids=[c[0] for c in IMS])
def test_if_modified_since(srv, value, status):
    first = srv.get("/index.html")
    if value is None:
        value = first.header("last-modified")
        assert value, "GET /index.html answered without Last-Modified"
    request = f"GET /index.html HTTP/1.1\r\nHost: {srv.host}\r\nIf-Modified-Since: {value}\r\n\r\n".encode("latin-1")
    for attempt in ("fresh-1", "fresh-2", "keepalive-after-get"):
        with srv.connect() as conn:
            if attempt == "keepalive-after-get":
                conn.send(srv.fill(GET_INDEX))
                expect_status(conn, conn.response(), 200, "the first, plain GET")
            conn.send(request)
            resp = expect_status(conn, conn.response(), status, f"If-Modified-Since: {value!r} ({attempt})")
            if status == 200 and resp.body != first.body:
                conn.fail("200, but not the page's body")


# --- controls -----------------------------------------------------------------------------------
# The well-formed twin of each hostile request above gets 200 / 202, so each refusal above is caused
# by its defect and not by something else in the request (a missing token, a bad body, ...).

CONTROLS = [
    # id, request, expected status
    *[(f"one-host{t.replace('/', '-')}", raw(f"GET {t} HTTP/1.1", HOSTLINE), 200) for t in DUP_TARGETS],
    ("plain-field", raw("GET / HTTP/1.1", HOSTLINE, "X-Note: a folded"), 200),
    ("http10-publish", raw(PUBLISH_10, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", body=VALID_JSON), 202),
    ("cl-publish", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 12", body=VALID_JSON), 202),
    ("cl-publish-16", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Content-Length: 16", body=b'{"data":"xyzab"}'), 202),
    ("chunked-publish", raw(PUBLISH, HOSTLINE, AUTH, JSON_CT, "Transfer-Encoding: chunked", body=JSON_CHUNKED), 202),
    ("target-8000", raw(f"GET /?{'q' * 7990} HTTP/1.1", HOSTLINE), 200),
    ("header-section-12k", raw("GET / HTTP/1.1", HOSTLINE, *[f"X-Pad-{i}: {'p' * 480}" for i in range(24)]), 200),
]


@pytest.mark.parametrize("request_bytes, status", [c[1:] for c in CONTROLS], ids=[c[0] for c in CONTROLS])
def test_controls(srv, request_bytes, status):
    with srv.connect() as conn:
        conn.send(srv.fill(request_bytes))
        expect_status(conn, conn.response(), status, "well-formed request")


# --- 15. encodings ------------------------------------------------------------------------------

PAGE = "<html><body><p>hi</p></body></html>"
ENCODED_PAGES = [
    # id, file name, file bytes, codec of the text after the BOM (None: served byte for byte)
    ("utf-16le", "enc-utf16le.html", b"\xff\xfe" + PAGE.encode("utf-16-le"), "utf-16-le"),
    ("utf-16be", "enc-utf16be.html", b"\xfe\xff" + PAGE.encode("utf-16-be"), "utf-16-be"),
    ("utf-8-bom", "enc-utf8bom.html", b"\xef\xbb\xbf" + PAGE.encode("utf-8"), "utf-8"),
    # FF FE 00 00 also starts like UTF-16LE; browsers have no UTF-32, so it is left untouched.
    ("utf-32le", "enc-utf32le.html", b"\xff\xfe\x00\x00" + PAGE.encode("utf-32-le"), None),
]
BOMS = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-8": b"\xef\xbb\xbf"}


@pytest.mark.parametrize("name, data, codec", [c[1:] for c in ENCODED_PAGES], ids=[c[0] for c in ENCODED_PAGES])
def test_encoded_page(srv, name, data, codec):
    (srv.server.site_dir / name).write_bytes(data)
    body = srv.wait_served(f"/{name}").body
    where = f"/{name}: got {show(body)}"
    if codec is None:
        assert body == data, f"not served byte for byte; {where}"
        return
    bom = BOMS[codec]
    assert body.startswith(bom), f"the BOM is gone; {where}"
    try:
        text = body[len(bom):].decode(codec)
    except UnicodeDecodeError as error:
        pytest.fail(f"the body does not decode as {codec} ({error}); {where}")
    assert text.count(INJECTED) == 1, f"not exactly one client tag in {text!r}"
    assert INJECTED + "</body>" in text and text.replace(INJECTED, "", 1) == PAGE, (
        f"the tag is not injected right before </body>, or the page changed: {text!r}")
