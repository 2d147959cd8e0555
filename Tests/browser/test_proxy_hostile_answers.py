"""Hostile and malformed ANSWERS from the app behind `beacon serve --proxy URL`, over raw sockets.

The app (test_proxy_route's `App`, a threaded socket server) answers `/case/ID/N` with the case's
bytes exactly as written here, and `/page/NAME` with a good page. A raw browser socket reads what
Beacon makes of each answer with a STRICT HTTP/1.1 reader (RFC 9112: a status line
`HTTP/1.x DDD reason`, CRLF field lines of token names and values without CR, LF or NUL, exactly one
framing -- a `Content-Length` of digits, `Transfer-Encoding: chunked` of hex chunk sizes, or the
close).

Every case runs twice: through `beacon serve --proxy URL` without a folder ("front": GET and HEAD
go to the app from the front door's route) and with a folder that lacks the paths ("routed": they
go through the router's proxy). For each case, from outside:

  1. within WAIT seconds the browser gets the app's meaning well framed (its status and body bytes,
     with exactly one client tag added to an HTML page), or a `502` whose page says the app's answer
     cannot be read, or a clean close -- as the case allows (an answer the app cuts short may also
     reach the browser cut short, so that it cannot be taken for whole). Never a hang, never two
     answers for one request, never a head the browser could read two ways, never a `Domain` of the
     app's host nor a `Location` naming the app's origin;
  2. afterwards a good page through a NEW browser connection gets the app's page with one tag;
  3. where the browser's connection is kept after a whole answer, a second request on it gets its
     own page (nothing left over from the bad answer: not its extra bytes, not a smuggled answer).

References: RFC 9112 §4 (status line), §5 (field syntax; a proxy removes whitespace before a colon
or rejects), §6.3 (framing; an invalid Content-Length from the server is a 502 and the connection
closed), §7 (chunked, extensions, trailers, transfer codings); RFC 9110 §5.5 (CR/LF/NUL in values),
§6.4.1 + §15.3.5/§15.4.5 (204/304 and HEAD have no body), §15.2 (1xx), §10.2.2 (Location);
RFC 6265 §5.3 (Domain). A 502 or a close are both acceptable for an answer that cannot be read
(nginx: "upstream sent invalid header/status/chunked response" -> 502).
"""

import gzip
import re
import select
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import pytest

from proxy_battery import VARIANTS, ProxyBeacons, all_of
from test_proxy_route import TAG, App, AppConnection, Browser, answer, chunked, page, pages

WAIT = 10.0  # seconds: the bound on every wait for Beacon
QUIET = 0.05  # seconds to look for stray bytes after a whole answer
SHOW = 600
CRLF = b"\r\n"

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n\x00]*)?")
CHUNK_LINE = re.compile(rb"([0-9a-fA-F]{1,16})(?:[ \t]*;[^\r\n\x00]*)?")


def show(data: bytes) -> str:
    data = bytes(data)
    text = repr(data[:SHOW])
    return text if len(data) <= SHOW else f"{text} ... ({len(data)} bytes in all)"


# MARK: - The browser's strict reader


@dataclass
class Answer:
    status: int
    head: bytes
    fields: list
    body: bytes = b""
    complete: bool = False
    interim: list = field(default_factory=list)  # 1xx heads passed on before it

    def all(self, name: str) -> list:
        return [value for field_name, value in self.fields if field_name == name]

    def header(self, name: str):
        values = self.all(name)
        return values[0] if values else None

    def __repr__(self):
        return f"<{show(self.head)} + {show(self.body)}, complete={self.complete}>"


class Unreadable(Exception):
    """What Beacon sent the browser cannot be read one way only."""


def read_head(head: bytes):
    """(status, fields) of a head (without its empty line), read strictly."""
    if b"\x00" in head:
        raise Unreadable(f"a NUL in the head: {show(head)}")
    if re.search(rb"\r(?!\n)|(?<!\r)\n", head):
        raise Unreadable(f"a bare CR or LF in the head: {show(head)}")
    line, *lines = head.split(b"\r\n")
    match = STATUS_LINE.fullmatch(line)
    if not match:
        raise Unreadable(f"not an HTTP/1.x status line: {line!r}")
    fields = []
    for field_line in lines:
        name, colon, value = field_line.partition(b":")
        if not colon or not name or any(byte not in TCHAR for byte in name):
            raise Unreadable(f"a field line that is not `token: value`: {field_line!r}")
        fields.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return int(match.group(1)), fields


class StrictBrowser:
    def __init__(self, port: int):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = bytearray()
        self.received = bytearray()
        self.eof = False

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def request(self, method: str, target: str) -> bytes:
        return f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()

    def _fill(self, deadline: float, what: str) -> bool:
        """More bytes; False at the end of the connection; a test failure past `deadline`."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(what)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(what) from None
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.received += data
        return True

    def quiet(self, timeout: float) -> bool:
        """Whether nothing (not even a close) arrives within `timeout`."""
        if self.eof or self.buf:
            return False
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return True
        try:
            self._fill(time.monotonic() + WAIT, "stray bytes")
        except TimeoutError:
            return True
        return False

    def read(self, head_request: bool = False):
        """The next final answer (1xx skipped but kept), or None for a close before any byte of one.
        Raises TimeoutError on a hang, Unreadable on bytes a strict client cannot read one way."""
        deadline = time.monotonic() + WAIT
        interim = []
        while True:
            while b"\r\n\r\n" not in self.buf:
                if len(self.buf) > 1 << 20:
                    raise Unreadable(f"a head over 1 MiB: {show(self.buf)}")
                if not self._fill(deadline, "an answer's head"):
                    if self.buf:
                        raise Unreadable(f"the connection ended inside a head: {show(self.buf)}")
                    return None
            end = self.buf.index(b"\r\n\r\n")
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            status, fields = read_head(head)
            if 100 <= status < 200:
                if status == 101:
                    raise Unreadable(f"a 101 for a plain request: {show(head)}")
                interim.append(head)
                continue
            break
        result = Answer(status, head, fields, interim=interim)
        codings = result.all("transfer-encoding")
        lengths = result.all("content-length")
        if codings and lengths:
            raise Unreadable(f"both Transfer-Encoding and Content-Length: {show(head)}")
        if len(lengths) > 1 and len(set(lengths)) > 1:
            raise Unreadable(f"two lengths: {show(head)}")
        if codings and [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
            raise Unreadable(f"a transfer coding other than one `chunked`: {codings}")
        if lengths and not re.fullmatch(r"[0-9]{1,15}", lengths[0]):
            raise Unreadable(f"a Content-Length that is not digits: {lengths}")
        if head_request or status in (204, 304):
            result.complete = True
        elif codings:
            result.complete = self._chunks(result, deadline)
        elif lengths:
            size = int(lengths[0])
            while len(self.buf) < size and self._fill(deadline, "a sized body"):
                pass
            result.body = bytes(self.buf[:size])
            del self.buf[:size]
            result.complete = len(result.body) == size
        else:
            while self._fill(deadline, "a body to the close"):
                pass
            result.body = bytes(self.buf)
            self.buf.clear()
            result.complete = True
        return result

    def _line(self, deadline) -> bytes:
        while b"\r\n" not in self.buf:
            if re.search(rb"\r(?!\n)|(?<!\r)\n", bytes(self.buf[:-1])):
                raise Unreadable(f"a bare CR or LF in the chunked framing: {show(self.buf)}")
            if not self._fill(deadline, "a chunk-size line"):
                return None
        end = self.buf.index(b"\r\n")
        line = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return line

    def _chunks(self, result: Answer, deadline) -> bool:
        body = bytearray()
        try:
            while True:
                line = self._line(deadline)
                if line is None:
                    return False
                match = CHUNK_LINE.fullmatch(line)
                if not match:
                    raise Unreadable(f"a chunk-size line that is not hex: {line!r}")
                size = int(match.group(1), 16)
                if size == 0:
                    while True:
                        trailer = self._line(deadline)
                        if trailer is None:
                            return False
                        if trailer == b"":
                            return True
                        read_head(b"HTTP/1.1 200 OK\r\n" + trailer)
                while len(self.buf) < size + 2:
                    if not self._fill(deadline, "chunk data"):
                        body += self.buf[:size]
                        self.buf.clear()
                        return False
                if self.buf[size:size + 2] != b"\r\n":
                    raise Unreadable(f"chunk data not followed by CRLF: {show(self.buf[:size + 8])}")
                body += self.buf[:size]
                del self.buf[:size + 2]
        finally:
            result.body = bytes(body)


# MARK: - The cases


@dataclass
class Ctx:
    app_port: int
    base_url: str  # Beacon's, ending in "/"

    @property
    def app(self) -> str:
        return f"127.0.0.1:{self.app_port}"


APP = "the app's meaning"
CLOSE, BAD_GATEWAY, CUT = "a clean close", "a 502", "cut short"
PASS = frozenset({APP})
EITHER = frozenset({APP, BAD_GATEWAY, CLOSE})
REJECT = frozenset({BAD_GATEWAY, CLOSE})
CUT_SHORT = frozenset({BAD_GATEWAY, CLOSE, CUT})


@dataclass
class Case:
    id: str
    data: object  # the app's answer: bytes with {app} for the app's authority, or a function of Ctx
    accept: frozenset
    status: int = 200
    body: bytes = b""  # the body the app means (HTML: before the tag)
    html: bool = False
    method: str = "GET"
    after: str = "keep"  # what the app does after writing: "keep" serving the connection, or "close"
    check: object = None  # more checks on the app's meaning passed on: check(answer, ctx)
    write: object = None  # a writer of its own: write(connection, data) -> whether to keep serving
    settle: float = QUIET  # seconds to look for stray bytes before the kept connection's next request

    def bytes(self, c: Ctx) -> bytes:
        data = self.data(c) if callable(self.data) else self.data
        return data.replace(b"{app}", c.app.encode())


def html_answer(name: str, *headers: str, status: str = "200 OK", length: bool = True, version="HTTP/1.1"):
    return answer(page(name), status=status, headers=headers, length=length, version=version)


def text_answer(body: bytes, *headers: str, status: str = "200 OK"):
    return answer(body, status=status, content_type="text/plain", headers=headers)


def raw_answer(status_line: bytes, *lines: bytes, body: bytes = b"", length: bool = True) -> bytes:
    lines = list(lines)
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join([status_line, *lines]) + b"\r\n\r\n" + body


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nSMUGGLED"
HELLO = b"hello, world\n"


def later(delay: float):
    """A writer sending the answer's head and body, then the rest `delay` seconds later."""
    def write(connection: AppConnection, data: bytes) -> bool:
        first, rest = data.split(b"||LATER||")
        if not connection.send(first):
            return False
        time.sleep(delay)  # the app's pause, not a wait for a condition
        return connection.send(rest)
    return write


def byte_at_a_time(connection: AppConnection, data: bytes) -> bool:
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for index in range(len(data)):
        if not connection.send(data[index:index + 1]):
            return False
        time.sleep(0.0005)  # one byte per segment
    return True


def endless_head(connection: AppConnection, data: bytes) -> bool:
    """A 103 whose head never ends: field lines for up to 15 s, until Beacon lets go."""
    if not connection.send(data):
        return False
    line = b"Link: </style.css>; rel=preload; as=style\r\n" * 100
    deadline = time.monotonic() + 15
    connection.sock.settimeout(2)
    while time.monotonic() < deadline:
        try:
            connection.sock.sendall(line)
        except OSError:
            return False
        if connection.peer_left(0.002):
            return False
    return False


def location_is(expected):
    def check(response: Answer, c: Ctx):
        want = expected(c)
        assert response.all("location") == [want], f"Location {response.all('location')}, not [{want!r}]"
    return check


def no_app_origin(response: Answer, c: Ctx):
    locations = response.all("location")
    assert len(locations) <= 1, f"several Locations: {locations}"
    for location in locations:
        target = urlsplit(urljoin(c.base_url, location))
        assert (target.hostname, target.port) != ("127.0.0.1", c.app_port), (
            f"Location {location!r} names the app's origin {c.app} (unrewritten)")


def cookies_without_app_domain(expected_cookies):
    def check(response: Answer, c: Ctx):
        cookies = response.all("set-cookie")
        for cookie in cookies:
            for attribute in cookie.split(";")[1:]:
                name, _, value = attribute.strip().partition("=")
                if name.strip().lower() == "domain":
                    assert value.strip().lstrip(".").lower() != "127.0.0.1", f"the app's host as Domain: {cookie!r}"
        names = [cookie.split(";")[0].strip() for cookie in cookies]
        assert names == expected_cookies, f"cookies {names}, not {expected_cookies}"
    return check


def content_encoding(value):
    def check(response: Answer, c: Ctx):
        assert response.all("content-encoding") == [value], f"Content-Encoding {response.all('content-encoding')}"
    return check


def no_field(name: str):
    def check(response: Answer, c: Ctx):
        assert not response.all(name), f"a {name} field came: {response.all(name)}"
    return check


PLAIN = b"Content-Type: text/plain"
HTML = b"Content-Type: text/html; charset=utf-8"
ONE_PAGE = page("case")
CHUNKED_HEAD = answer(b"", length=False, headers=("Transfer-Encoding: chunked",))

CASES = [
    # -- Status lines (RFC 9112 §4: HTTP-version SP 3DIGIT SP [reason]).
    Case("status-99", raw_answer(b"HTTP/1.1 99 X", PLAIN, body=HELLO), REJECT),
    Case("status-1000", raw_answer(b"HTTP/1.1 1000 X", PLAIN, body=HELLO), REJECT),
    Case("status-20", raw_answer(b"HTTP/1.1 20 OK", PLAIN, body=HELLO), REJECT),
    Case("status-http2", raw_answer(b"HTTP/2 200", PLAIN, body=HELLO), REJECT),
    Case("status-icy", raw_answer(b"ICY 200 OK", PLAIN, body=HELLO), REJECT),
    # No SP and no reason: every client reads it (the reason is to be ignored); an empty one is valid.
    Case("status-no-reason", raw_answer(b"HTTP/1.1 200", HTML, body=ONE_PAGE), PASS, body=ONE_PAGE, html=True),
    Case("status-empty-reason", raw_answer(b"HTTP/1.1 200 ", HTML, body=ONE_PAGE), PASS, body=ONE_PAGE, html=True),
    Case("status-reason-nul-esc", raw_answer(b"HTTP/1.1 200 O\x00K\x1b[2J", HTML, body=ONE_PAGE), EITHER,
         body=ONE_PAGE, html=True),
    Case("status-reason-bare-cr", raw_answer(b"HTTP/1.1 200 OK\rSet-Cookie: injected=1", HTML, body=ONE_PAGE),
         EITHER, body=ONE_PAGE, html=True, check=no_field("set-cookie")),
    # -- 1xx (RFC 9110 §15.2: a client parses any number before the final answer).
    Case("1xx-100-unsolicited", b"HTTP/1.1 100 Continue\r\n\r\n" + html_answer("case"), PASS, body=ONE_PAGE,
         html=True),
    Case("1xx-102-processing", b"HTTP/1.1 102 Processing\r\n\r\n" + html_answer("case"), PASS, body=ONE_PAGE,
         html=True),
    Case("1xx-103-several", b"".join(b"HTTP/1.1 103 Early Hints\r\nLink: </s%d.css>; rel=preload; as=style\r\n"
                                     b"Link: </f%d.woff2>; rel=preload; as=font; crossorigin\r\n\r\n" % (i, i)
                                     for i in range(5)) + html_answer("case"), PASS, body=ONE_PAGE, html=True),
    # A 1xx ends at its empty line whatever it says (§15.2): a length on it announces no body.
    Case("1xx-with-length", b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n" + html_answer("case"), PASS,
         body=ONE_PAGE, html=True),
    Case("1xx-103-two-thousand", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload; as=style\r\n\r\n" * 2000
         + html_answer("case"), EITHER, body=ONE_PAGE, html=True),
    # (An endless run of whole 1xx answers is an app still working -- 102 says just that -- and is
    # left to wait, as a slow app is; a 1xx whose HEAD never ends is bounded by the head limit.)
    Case("1xx-head-never-ends", b"HTTP/1.1 103 Early Hints\r\n", REJECT, write=endless_head),
    # -- Field lines.
    Case("field-nul", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-A: a\x00b", body=ONE_PAGE), EITHER, body=ONE_PAGE,
         html=True),
    Case("field-bare-cr", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-A: a\rSet-Cookie: injected=1", body=ONE_PAGE),
         EITHER, body=ONE_PAGE, html=True, check=no_field("set-cookie")),
    Case("field-bare-cr-length", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"X-A: a\rContent-Length: 0",
                                            body=HELLO), EITHER, body=HELLO),
    Case("field-del", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-A: a\x7fb", body=ONE_PAGE), EITHER, body=ONE_PAGE,
         html=True),
    Case("field-name-not-token", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X[A]: 1", body=ONE_PAGE), EITHER,
         body=ONE_PAGE, html=True),
    Case("field-space-before-colon", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-A : 1", body=ONE_PAGE), EITHER,
         body=ONE_PAGE, html=True),
    Case("field-space-before-colon-te", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Transfer-Encoding : chunked",
                                                   body=b"5\r\nhello\r\n0\r\n\r\n"), REJECT),
    Case("field-no-colon", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-A 1", body=ONE_PAGE), EITHER, body=ONE_PAGE,
         html=True),
    Case("head-70k", raw_answer(b"HTTP/1.1 200 OK", HTML, b"X-Big: " + b"b" * (70 << 10), body=ONE_PAGE), EITHER,
         body=ONE_PAGE, html=True),
    Case("head-1m", raw_answer(b"HTTP/1.1 200 OK", HTML, *([b"X-Big: " + b"b" * 1000] * 1024), body=ONE_PAGE),
         REJECT),
    Case("fields-10000", raw_answer(b"HTTP/1.1 200 OK", HTML, *(b"X-F%d: %d" % (i, i) for i in range(10000)),
                                    body=ONE_PAGE), EITHER, body=ONE_PAGE, html=True),
    Case("set-cookie-500", raw_answer(b"HTTP/1.1 200 OK", HTML, *(b"Set-Cookie: c%d=v%d; Path=/" % (i, i)
                                                                  for i in range(500)), body=ONE_PAGE),
         PASS, body=ONE_PAGE, html=True, check=cookies_without_app_domain([f"c{i}=v{i}" for i in range(500)])),
    # -- Location (README: one naming the app's origin is rewritten to Beacon's) and Set-Cookie.
    Case("location-encoded-crlf", raw_answer(b"HTTP/1.1 302 Found", PLAIN,
                                             b"Location: http://{app}/a%0d%0aSet-Cookie:%20x=1%0d%0a", body=b""),
         PASS, status=302, check=all_of(location_is(lambda c: c.base_url + "a%0d%0aSet-Cookie:%20x=1%0d%0a"),
                                        no_field("set-cookie"))),
    Case("location-userinfo-app", raw_answer(b"HTTP/1.1 302 Found", PLAIN, b"Location: http://evil@{app}/landing"),
         EITHER, status=302, check=no_app_origin),
    Case("location-scheme-relative-evil", raw_answer(b"HTTP/1.1 302 Found", PLAIN, b"Location: //evil.example/"),
         PASS, status=302, check=all_of(no_app_origin, location_is(lambda c: "//evil.example/"))),
    Case("location-scheme-relative-app", raw_answer(b"HTTP/1.1 302 Found", PLAIN, b"Location: //{app}/landing"),
         EITHER, status=302, check=no_app_origin),
    Case("cookie-domain-app", raw_answer(b"HTTP/1.1 200 OK", HTML, b"Set-Cookie: s=1; Domain=127.0.0.1; Path=/",
                                         b"Set-Cookie: t=2; Path=/; domain=.127.0.0.1", body=ONE_PAGE),
         PASS, body=ONE_PAGE, html=True, check=cookies_without_app_domain(["s=1", "t=2"])),
    Case("cookie-domain-evil", raw_answer(b"HTTP/1.1 200 OK", HTML, b"Set-Cookie: s=1; Domain=.evil.example; Path=/",
                                          body=ONE_PAGE),
         PASS, body=ONE_PAGE, html=True, check=cookies_without_app_domain(["s=1"])),
    # -- Framing.
    # More bytes than the length, in the same write: a whole second answer. It must never answer
    # the browser's next request (nginx: "upstream sent more data than specified", no keepalive).
    Case("length-short-smuggles-answer", text_answer(HELLO) + SMUGGLED, PASS, body=HELLO),
    Case("length-short-smuggles-answer-html", html_answer("case") + SMUGGLED, PASS, body=ONE_PAGE, html=True),
    # The same, 0.1 s later: the extra answer is on Beacon's connection to the app (0.4 s) before the
    # browser's next request is, so it can only be stray bytes, never that request's answer.
    Case("length-short-smuggles-answer-later", text_answer(HELLO) + b"||LATER||" + SMUGGLED, PASS, body=HELLO,
         write=later(0.1), settle=0.5),
    Case("length-short-smuggles-answer-later-html", html_answer("case") + b"||LATER||" + SMUGGLED, PASS,
         body=ONE_PAGE, html=True, write=later(0.1), settle=0.5),
    Case("length-short-garbage", text_answer(HELLO) + b"garbage after the body\r\n\r\n", PASS, body=HELLO),
    Case("length-long-then-close", text_answer(HELLO).replace(b"Content-Length: 13", b"Content-Length: 100"),
         CUT_SHORT, body=HELLO, after="close"),
    Case("length-long-then-close-html", answer(ONE_PAGE).replace(b"Content-Length: %d" % len(ONE_PAGE),
                                                                 b"Content-Length: 1000"),
         CUT_SHORT, body=ONE_PAGE, html=True, after="close"),
    Case("length-negative", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Content-Length: -5", body=b"hello",
                                       length=False), REJECT),
    Case("length-plus", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Content-Length: +5", body=b"hello", length=False),
         REJECT),
    Case("length-list-differs", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Content-Length: 5, 13", body=HELLO,
                                           length=False), REJECT),
    # 2^64 + 5: a reader that wraps reads 5, and "hello" then looks like a whole answer.
    Case("chunk-size-past-64-bits", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Transfer-Encoding: chunked",
                                               body=b"10000000000000005\r\nhello\r\n0\r\n\r\n", length=False),
         CUT_SHORT),
    Case("chunk-extension", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Transfer-Encoding: chunked",
                                       body=b"5;name=value;q=\"a b\"\r\nhello\r\n0;last\r\n\r\n", length=False),
         PASS, body=b"hello"),
    Case("chunk-trailers", raw_answer(b"HTTP/1.1 200 OK", HTML, b"Transfer-Encoding: chunked", b"Trailer: X-T",
                                      body=chunked(ONE_PAGE)[:-2] + b"X-T: t\r\nExpires: 0\r\n\r\n", length=False),
         PASS, body=ONE_PAGE, html=True),
    Case("chunked-with-length", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Content-Length: 3",
                                           b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n",
                                           length=False), EITHER, body=b"hello"),
    Case("204-with-body", b"HTTP/1.1 204 No Content\r\nX-App: yes\r\nContent-Length: 13\r\n\r\n" + HELLO, PASS,
         status=204),
    Case("204-with-body-unsized", b"HTTP/1.1 204 No Content\r\nX-App: yes\r\n\r\n" + SMUGGLED, PASS, status=204),
    Case("304-with-body", b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 13\r\n\r\n' + HELLO, PASS,
         status=304),
    Case("head-answer-with-body", html_answer("case"), PASS, method="HEAD"),
    Case("head-answer-with-body-chunked", CHUNKED_HEAD + chunked(ONE_PAGE), PASS, method="HEAD"),
    Case("te-gzip-chunked", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Transfer-Encoding: gzip, chunked",
                                       body=chunked(gz(HELLO)), length=False), EITHER, body=HELLO),
    Case("te-chunked-chunked", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Transfer-Encoding: chunked, chunked",
                                          body=chunked(chunked(HELLO)), length=False), EITHER, body=HELLO),
    # Not gzip at all: passed on as it came (the browser's own error), or refused, or cut short.
    Case("content-encoding-not-gzip-html", raw_answer(b"HTTP/1.1 200 OK", HTML, b"Content-Encoding: gzip",
                                                      body=ONE_PAGE), CUT_SHORT | {APP}, body=ONE_PAGE,
         check=content_encoding("gzip")),
    Case("content-encoding-not-gzip-text", raw_answer(b"HTTP/1.1 200 OK", PLAIN, b"Content-Encoding: gzip",
                                                      body=HELLO), PASS, body=HELLO,
         check=content_encoding("gzip")),
    # -- One byte at a time.
    Case("byte-at-a-time", html_answer("case"), PASS, body=ONE_PAGE, html=True, write=byte_at_a_time),
    Case("byte-at-a-time-chunked", CHUNKED_HEAD + chunked(ONE_PAGE, size=3), PASS, body=ONE_PAGE, html=True,
         write=byte_at_a_time),
]
CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES)


# MARK: - The app and the Beacons, one of each for the module


class Hub:
    def __init__(self, factory):
        self.ctxs = {}
        self.app = App(self._handle)
        self.proxies = ProxyBeacons(factory, self.app.port, "answers")

    def _handle(self, connection: AppConnection):
        while (request := connection.read_request()) is not None:
            if request.target.startswith("/case/"):
                case = CASES_BY_ID[request.target.split("/")[2]]
                variant = request.target.split("/")[3]
                data = case.bytes(self.ctxs[variant])
                keep = case.write(connection, data) if case.write else connection.send(data)
                if not keep or case.after == "close":
                    return
            elif not connection.send(pages(request, connection)):
                return

    def beacon(self, variant: str):
        beacon = self.proxies.beacon(variant)
        self.ctxs[variant] = Ctx(self.app.port, beacon.base_url)
        return beacon

    def stop(self):
        self.proxies.stop()
        self.app.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    started = Hub(tmp_path_factory)
    yield started
    started.stop()


# MARK: - The checks


def params():
    for case in CASES:
        for variant in VARIANTS:
            yield pytest.param(variant, case, id=f"{variant}-{case.id}")


def assert_meaning(response: Answer, case: Case, c: Ctx, story: str):
    assert response.status == case.status, f"status {response.status}, the app's was {case.status}" + story
    if case.method == "HEAD" or case.status in (204, 304):
        assert response.body == b"", story
    elif case.html:
        assert response.body.count(TAG) == 1, "not exactly one client tag in the page" + story
        assert response.body.replace(TAG, b"", 1) == case.body, "the page is not the app's" + story
    else:
        assert response.body == case.body, "the body is not the app's" + story
    if case.check:
        try:
            case.check(response, c)
        except AssertionError as error:
            raise AssertionError(f"{error}{story}") from None


def page_text(body: bytes) -> str:
    text = re.sub(r"<style>.*?</style>|<script.*?</script>|<[^>]+>", " ", body.decode("utf-8", "replace"), flags=re.S)
    return re.sub(r"\s+", " ", text).strip()


NUMBERS = iter(range(1, 1 << 30))


@pytest.mark.parametrize("variant, case", list(params()))
def test_hostile_answer(hub, variant, case):
    beacon = hub.beacon(variant)
    port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
    c = hub.ctxs[variant]
    n = next(NUMBERS)
    sent = case.bytes(c)
    browser = StrictBrowser(port)
    outcome = None
    try:
        browser.send(browser.request(case.method, f"/case/{case.id}/{variant}/{n}"))

        def story() -> str:
            return (f"\n  the app sent:     {show(sent)}\n  the browser got:  {show(browser.received)}"
                    f"{' [closed]' if browser.eof else ''}\n{beacon.log()[-1500:]}")

        started = time.monotonic()
        try:
            response = browser.read(head_request=case.method == "HEAD")
        except TimeoutError as error:
            pytest.fail(f"a hang: nothing more for {WAIT:.0f} s waiting for {error}" + story(), pytrace=False)
        except Unreadable as error:
            pytest.fail(f"the browser cannot read Beacon's answer one way: {error}" + story(), pytrace=False)
        elapsed = time.monotonic() - started

        # (1) What the browser got.
        if response is None:
            outcome = CLOSE
        elif response.status == 502 and case.status != 502:
            outcome = BAD_GATEWAY
            assert response.complete, "a 502 cut short" + story()
            assert b"cannot be read" in response.body, "the 502 does not say what was wrong" + story()
        elif not response.complete:
            outcome = CUT
            # What did come is the start of the app's answer, never another one.
            assert response.status == case.status, story()
            expected = case.body + (TAG if case.html else b"")
            got = response.body.replace(TAG, b"", 1) if case.html else response.body
            assert case.body.startswith(got) or expected.startswith(response.body), (
                "a cut-short answer that is not the start of the app's" + story())
        else:
            outcome = APP
            assert_meaning(response, case, c, story())
        said = ""
        if outcome == BAD_GATEWAY:
            said = "; 502 says: " + page_text(response.body)[:200]
        elif response is not None:
            said = "; " + repr(response.head.split(CRLF, 1)[0])
        report = f"{variant}-{case.id}: {outcome} in {elapsed:.2f} s{said}"
        assert outcome in case.accept, f"got {outcome}, the case allows {sorted(case.accept)}" + story()

        # (3) A kept connection serves its next request, with nothing left over from this one.
        closing = response is not None and ("close" in (response.header("connection") or "").lower()
                                            or (response.complete and not response.all("content-length")
                                                and not response.all("transfer-encoding")
                                                and case.method != "HEAD"
                                                and response.status not in (204, 304)))
        if response is not None and response.complete and not closing and not browser.eof:
            if not browser.quiet(case.settle) and not browser.eof:
                pytest.fail(f"bytes after the answer, before another request: {show(browser.buf)}" + story(),
                            pytrace=False)
            if not browser.eof:
                browser.send(browser.request("GET", f"/page/kept{n}"))
                try:
                    second = browser.read()
                except TimeoutError as error:
                    pytest.fail(f"a hang on the kept connection's next request ({error})" + story(), pytrace=False)
                except Unreadable as error:
                    pytest.fail(f"the kept connection's next answer is unreadable: {error}" + story(), pytrace=False)
                if second is None:
                    report += "; the kept connection closed on the next request, with nothing sent"
                else:
                    report += "; the kept connection's next request got its page"
                    assert second.complete and second.status == 200, (
                        f"the next request on the kept connection got {second!r}" + story())
                    assert second.body.count(TAG) == 1 and second.body.replace(TAG, b"", 1) == page(f"kept{n}"), (
                        f"the next request on the kept connection got another answer: {second!r}" + story())
            else:
                report += "; then Beacon closed the connection"
        elif browser.eof:
            assert not browser.buf, f"bytes after the answer: {show(browser.buf)}" + story()
            report += "; closed"
        print(report)
    finally:
        browser.close()

    # (2) Beacon goes on: a good page on a new connection.
    assert beacon.process.poll() is None, f"Beacon exited\n{beacon.log()[-3000:]}"
    fresh = Browser(beacon)
    try:
        response = fresh.get(f"/page/after{n}")
        assert response.status == 200 and response.body.count(TAG) == 1, response
        assert response.body.replace(TAG, b"", 1) == page(f"after{n}"), response
    finally:
        fresh.close()
