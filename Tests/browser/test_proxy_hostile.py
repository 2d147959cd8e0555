"""Hostile requests through `beacon serve --proxy URL`, seen from both ends, over raw sockets.

A browser-side socket sends each request byte for byte; the app behind Beacon is a small threaded
server written here that RECORDS EVERY BYTE it receives per connection and reads it strictly
(RFC 9112: a request line, CRLF field lines of token names, exactly one of `Content-Length` or
`Transfer-Encoding: chunked` decoded strictly, or no body; a bare CR or LF, an obs-fold, a NUL, a
name that is not a token, two lengths, a length beside chunked or a target not in origin form is an
error). It answers each request with a small `200 text/plain` (Content-Length, kept alive) whose
body says what it saw, so the browser can tell the app's answers from Beacon's own.

Every case runs twice: through `beacon serve --proxy URL` without a folder ("front": GET and HEAD
go to the app from the front door, the rest through the router) and with a folder that lacks the
paths ("routed": everything goes through the router's proxy). For each case, from outside:

  1. Beacon's answer is a refusal (a 4xx/5xx status in the case's set, with a body saying what was
     wrong) or a close, or the app's answer arrives -- never a hang (every read is bounded);
  2. what the app received parses strictly into whole requests, each with one framing and a body
     the browser framed that way; its Host is the browser's (validated); no hop-by-hop field the
     browser sent is forwarded; X-Forwarded-For ends with the real client address 127.0.0.1,
     X-Forwarded-Host is the Host, X-Forwarded-Proto is http (the client is not a --trust-proxy).
     One exception: a chunked body NIO's decoder refuses after the head passed (a chunk size past
     64 bits) leaves the app that request's head and a close, since bodies stream; the browser
     gets a 400 saying what was wrong, never a 502 blaming the app;
  3. the app saw no more requests than the browser got answers (and a request hidden in a body,
     `/hx/smuggled`, never reaches it);
  4. a plain GET on a new connection still gets the app's 200 afterwards.

Everything is on 127.0.0.1. The references for each expectation are RFC 9112 (§2.2 line endings,
§3 request line and target forms, §5 field syntax and obs-fold, §6 framing and smuggling, §7.1
chunked), RFC 9110 (§5.5 CR/LF/NUL in values, §7.6.1 Connection, §8.6 Content-Length) and
Beacon's README (limits: target 8 KiB -> 414, header section 16 KiB -> 431; the Host allowlist ->
403; never an open proxy). A refusal may be a 4xx or a close: both are what NIO's llhttp-based
decoder reasonably does with bytes it cannot read.
"""

import re
import socket
import threading
import time
from dataclasses import dataclass

import pytest

from proxy_battery import VARIANTS, ProxyBeacons, all_of

WAIT = 10.0  # seconds: the bound on every read that waits for an answer
QUIET = 0.2  # seconds of silence after the answers a case expects, to catch one more
SETTLE = 1.0  # seconds an app connection may hold a partial request before Beacon finishes or closes it
SHOW = 700  # bytes shown in failure messages

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
HEX = frozenset(b"0123456789abcdefABCDEF")
REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP/1\.[01])")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")

# RFC 9110 §7.6.1 and the proxy's own: fields that describe one connection.
HOP_BY_HOP = ("connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authorization",
              "proxy-authenticate", "transfer-encoding", "http2-settings")
# Fields Beacon sets itself: a browser's `Connection` naming them must not remove Beacon's.
SET_BY_BEACON = ("host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto")
PROBE = "/ok?probe="


def show(data: bytes) -> str:
    data = bytes(data)
    text = repr(data[:SHOW])
    return text if len(data) <= SHOW else f"{text} ... ({len(data)} bytes in all)"


# MARK: - The app: records every byte, reads strictly


class Malformed(Exception):
    pass


@dataclass
class AppRequest:
    seq: int
    connection: int
    raw: bytes
    method: str
    target: str
    version: str
    fields: list  # [(lower-case name, value)] in order
    framing: object  # None, "length" or "chunked"
    body: bytes

    def values(self, name: str) -> list:
        return [value for field_name, value in self.fields if field_name == name]

    def __repr__(self):
        return f"<app #{self.seq} on connection {self.connection}: {show(self.raw)}>"


def parse_field_line(line: bytes):
    if line[:1] in (b" ", b"\t"):
        raise Malformed(f"obs-fold (a line starting with whitespace): {line!r}")
    colon = line.find(b":")
    name = line[:colon]
    if colon <= 0 or any(byte not in TCHAR for byte in name):
        raise Malformed(f"a field name that is not a token: {line!r}")
    value = line[colon + 1:].strip(b" \t")
    # RFC 9110 §5.5: CR, LF and NUL never; other controls but HTAB are refused here too (DEL and
    # obs-text are kept, as a recipient may).
    if any(byte < 0x20 and byte != 9 for byte in value):
        raise Malformed(f"a control byte in a field value: {line!r}")
    return name.decode("latin-1").lower(), value.decode("latin-1")


def parse_request(buf: bytes):
    """(parts, length) when `buf` starts with a whole request; None while more is needed; raises
    Malformed at the first byte a strict HTTP/1.1 server refuses."""
    end = buf.find(b"\r\n\r\n")
    head = buf if end < 0 else buf[:end + 4]
    for match in re.finditer(rb"\r(?!\n)|(?<!\r)\n", head):
        if match.group() == b"\r" and match.start() == len(head) - 1:
            break  # a CR at the end of what came: its LF may be next
        kind = "CR" if match.group() == b"\r" else "LF"
        raise Malformed(f"a bare {kind} at byte {match.start()} of the head")
    if end < 0:
        if len(buf) > 256 << 10:
            raise Malformed("a head over 256 KiB")
        return None
    line, *lines = buf[:end].split(b"\r\n")
    match = REQUEST_LINE.fullmatch(line)
    if not match:
        raise Malformed(f"not a request line: {line!r}")
    method, target, version = (part.decode("latin-1") for part in match.groups())
    if not (target.startswith("/") or (target == "*" and method == "OPTIONS")):
        raise Malformed(f"a target not in origin form, sent to an origin server: {target!r}")
    fields = [parse_field_line(field_line) for field_line in lines]
    lengths = [value for name, value in fields if name == "content-length"]
    codings = [value for name, value in fields if name == "transfer-encoding"]
    position = end + 4
    if lengths and codings:
        raise Malformed("both Content-Length and Transfer-Encoding")
    if len(lengths) > 1:
        raise Malformed(f"{len(lengths)} Content-Length fields: {lengths}")
    if codings:
        if len(codings) != 1 or codings[0].lower() != "chunked":
            raise Malformed(f"Transfer-Encoding other than one `chunked`: {codings}")
        body = bytearray()
        while True:
            eol = buf.find(b"\r\n", position)
            if eol < 0:
                if b"\n" in buf[position:] or len(buf) - position > 40:
                    raise Malformed(f"a chunk-size line that does not end in CRLF: {buf[position:position + 40]!r}")
                return None
            size_line = buf[position:eol]
            if not 1 <= len(size_line) <= 16 or any(byte not in HEX for byte in size_line):
                raise Malformed(f"a chunk-size that is not 1-16 hex digits: {size_line!r}")
            size = int(size_line, 16)
            position = eol + 2
            if size == 0:
                while True:  # the trailer section
                    eol = buf.find(b"\r\n", position)
                    if eol < 0:
                        return None
                    trailer = buf[position:eol]
                    position = eol + 2
                    if not trailer:
                        return (method, target, version, fields, "chunked", bytes(body)), position
                    parse_field_line(trailer)
            if len(buf) < position + size + 2:
                return None
            if buf[position + size:position + size + 2] != b"\r\n":
                raise Malformed("chunk data not followed by CRLF")
            body += buf[position:position + size]
            position += size + 2
    if lengths:
        if not re.fullmatch(r"[0-9]{1,15}", lengths[0]):
            raise Malformed(f"a Content-Length that is not digits: {lengths[0]!r}")
        size = int(lengths[0])
        if len(buf) < position + size:
            return None
        return (method, target, version, fields, "length", buf[position:position + size]), position + size
    return (method, target, version, fields, None, b""), position


class AppConnection:
    def __init__(self, sock: socket.socket, index: int):
        self.sock = sock
        self.index = index
        self.raw = bytearray()  # every byte Beacon sent on it
        self.pending = bytearray()  # not yet read as a whole request
        self.open = True
        self.error = None


class App:
    """The upstream app on 127.0.0.1: one thread per connection Beacon opens."""

    def __init__(self):
        self.cond = threading.Condition()
        self.connections = []
        self.requests = []
        self.errors = []  # (seq mark, connection index, message, raw bytes of that connection)
        self.cut = []  # (seq mark, connection index, partial request bytes) for connections closed mid-request
        self.stopping = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                connection = AppConnection(sock, len(self.connections))
                self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: AppConnection):
        sock = connection.sock
        sock.settimeout(0.2)
        try:
            while not self.stopping:
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                with self.cond:
                    if not data:
                        connection.open = False
                        if connection.pending:
                            self.cut.append((len(self.requests), connection.index, bytes(connection.pending)))
                        self.cond.notify_all()
                        return
                    connection.raw += data
                    connection.pending += data
                while True:
                    with self.cond:
                        try:
                            parsed = parse_request(bytes(connection.pending))
                        except Malformed as error:
                            connection.error = str(error)
                            connection.open = False
                            self.errors.append((len(self.requests), connection.index, str(error),
                                                bytes(connection.raw)))
                            self.cond.notify_all()
                            try:
                                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                             b"Connection: close\r\n\r\n")
                            except OSError:
                                pass
                            return
                        if parsed is None:
                            break
                        (method, target, version, fields, framing, body), length = parsed
                        raw = bytes(connection.pending[:length])
                        del connection.pending[:length]
                        request = AppRequest(len(self.requests), connection.index, raw, method, target, version,
                                             fields, framing, body)
                        self.requests.append(request)
                        self.cond.notify_all()
                    text = f"app saw {method} {target[:200]} #{request.seq}\n".encode("latin-1")
                    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                              % len(text)) + (b"" if method == "HEAD" else text)
                    try:
                        sock.sendall(answer)
                    except OSError:
                        return
        finally:
            with self.cond:
                connection.open = False
                self.cond.notify_all()
            sock.close()

    def mark(self):
        with self.cond:
            return len(self.requests), len(self.errors), len(self.cut)

    def since(self, mark):
        """The requests, errors and cut requests since `mark`, once no open connection holds part of
        a request (waiting up to SETTLE for Beacon to finish or close it); and the connections that
        still do."""
        deadline = time.monotonic() + SETTLE
        with self.cond:
            def partial():
                return [c for c in self.connections if c.open and c.pending]
            self.cond.wait_for(lambda: not partial(), max(0.0, deadline - time.monotonic()))
            return (self.requests[mark[0]:], self.errors[mark[1]:], self.cut[mark[2]:],
                    [(c.index, bytes(c.pending)) for c in partial()])

    def stop(self):
        self.stopping = True
        self.thread.join(WAIT)
        self.listener.close()
        with self.cond:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# MARK: - The browser: a raw socket reading answers as HTTP/1.1 frames them


@dataclass
class Answer:
    status: int
    head: bytes
    fields: list
    body: bytes

    def header(self, name: str):
        return next((value for field_name, value in self.fields if field_name == name), None)

    @property
    def from_app(self) -> bool:
        return self.status == 200 and self.body.startswith(b"app saw ")

    def __repr__(self):
        return f"<{self.head!r} + {show(self.body)}>"


class Browser:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = bytearray()
        self.received = bytearray()
        self.eof = False
        self.send_error = None

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        try:
            self.sock.sendall(data)
        except OSError as error:  # Beacon refused and closed while the rest was on its way
            self.send_error = error

    def _fill(self, timeout: float) -> str:
        if self.eof:
            return "eof"
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return "timeout"
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return "eof"
        self.buf += data
        self.received += data
        return "data"

    def _take(self):
        """A whole answer from the front of the buffer (interim 1xx skipped), or None."""
        while True:
            if len(self.buf) >= 8 and not self.buf.startswith(b"HTTP/1."):
                pytest.fail(f"Beacon sent something that is not an HTTP/1 answer: {show(self.buf)}", pytrace=False)
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return None
            head = bytes(self.buf[:end])
            line, *lines = head.split(b"\r\n")
            match = STATUS_LINE.fullmatch(line)
            if not match:
                pytest.fail(f"not a status line: {line!r} (all: {show(self.received)})", pytrace=False)
            status = int(match.group(1))
            fields = []
            for field_line in lines:
                name, colon, value = field_line.partition(b":")
                if not colon:
                    pytest.fail(f"an answer's field line without a colon: {field_line!r}", pytrace=False)
                fields.append((name.decode("latin-1").strip().lower(), value.decode("latin-1").strip()))
            coding = next((v for n, v in fields if n == "transfer-encoding"), None)
            length = next((v for n, v in fields if n == "content-length"), None)
            rest = bytes(self.buf[end + 4:])
            if 100 <= status < 200:
                del self.buf[:end + 4]
                continue
            if status in (204, 304):
                body, used = b"", 0
            elif coding is not None:
                assert coding.lower() == "chunked" and length is None, f"answer framing: {head!r}"
                body, position = bytearray(), 0
                while True:
                    eol = rest.find(b"\r\n", position)
                    if eol < 0:
                        return None
                    size = int(rest[position:eol].split(b";")[0], 16)
                    position = eol + 2
                    if size == 0:
                        trailer_end = rest.find(b"\r\n\r\n", position - 2)
                        if trailer_end < 0:
                            return None
                        used = trailer_end + 4
                        break
                    if len(rest) < position + size + 2:
                        return None
                    body += rest[position:position + size]
                    position += size + 2
                body = bytes(body)
            elif length is not None:
                if len(rest) < int(length):
                    return None
                body, used = rest[:int(length)], int(length)
            else:
                if not self.eof:
                    return None  # a body to the close
                body, used = rest, len(rest)
            del self.buf[:end + 4 + used]
            return Answer(status, head, fields, body)

    def answers(self, wanted: int, what: str):
        """Every answer until Beacon closes, or until `wanted` answers came and then nothing for
        QUIET seconds -> (answers, closed). Waiting longer than WAIT for an answer is a hang."""
        found = []
        while True:
            answer = self._take()
            if answer is not None:
                found.append(answer)
                continue
            if self.eof:
                if self.buf:
                    pytest.fail(f"{what}: the connection ended inside an answer: {show(self.received)}",
                                pytrace=False)
                return found, True
            waiting = len(found) < wanted or bool(self.buf)
            if self._fill(WAIT if waiting else QUIET) == "timeout":
                if waiting:
                    pytest.fail(f"{what}: a hang: nothing more came for {WAIT:.0f} s with {len(found)} of "
                                f"{wanted} answer(s) read; bytes so far: {show(self.received)}", pytrace=False)
                return found, False


# MARK: - Beacons, one of each kind for the module


class Hub:
    """The app, and a Beacon of each kind in front of it."""

    def __init__(self, factory):
        self.app = App()
        self.proxies = ProxyBeacons(factory, self.app.port, "hostile")

    def beacon(self, variant: str):
        return self.proxies.beacon(variant)

    def stop(self):
        self.proxies.stop()
        self.app.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    started = Hub(tmp_path_factory)
    yield started
    started.stop()


# MARK: - The cases


@dataclass
class Ctx:
    port: int  # Beacon's
    app_port: int

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def app(self) -> str:
        return f"127.0.0.1:{self.app_port}"

    @property
    def smuggled(self) -> bytes:
        return f"GET /hx/smuggled HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()


def raw(line: str, *fields: str, body: bytes = b"") -> bytes:
    return ("\r\n".join((line, *fields)) + "\r\n\r\n").encode("latin-1") + body


def fill(template: bytes, c: Ctx) -> bytes:
    return template.replace(b"{host}", c.host.encode()).replace(b"{app}", c.app.encode())


PASS, REFUSE, EITHER = "the app's answer", "a refusal", "the app's answer or a refusal"
# What a refusal's text must be about: a body that says what was wrong.
FRAMING = r"length|Content-Length|Transfer-Encoding|chunk"
SYNTAX = r"malformed|header line|field|CRLF|fold"
HOST_TEXT = r"\bHost\b|host name"
VERSION = r"HTTP version"
METHOD = r"\bmethod\b"
TARGET = r"target|path|URL"
LIMIT = r"larger|longer|too (large|long)"
CONNECT = r"CONNECT|not a proxy"
HELLO = b"hello"


@dataclass
class Case:
    id: str
    request: object  # bytes with {host}/{app}, or a function of Ctx
    outcome: str  # PASS, REFUSE or EITHER
    statuses: frozenset = frozenset({400})  # Beacon's own answers allowed
    answers: int = 1  # requests the browser framed: answers it waits for
    bodies: object = (b"",)  # bodies the app may receive (as the browser framed them), or a function of Ctx
    hosts: object = None  # Host values the app may receive (a function of Ctx); default Beacon's
    smuggled: bool = False  # /hx/smuggled is inside a body: it must never reach the app
    check: object = None  # more checks on each app request: check(request, ctx)
    # The browser's body fails NIO's decoder after the head passed the guard: the head has gone to
    # the app by then (bodies stream), so the app sees that request end early, as when a browser
    # leaves mid-upload. The browser must still get a 400 saying what was wrong, never a 502.
    body_error: bool = False
    says: str = None  # what a refusal's text must be about (a regular expression; the group's topic if None)

    def bytes(self, c: Ctx) -> bytes:
        return self.request(c) if callable(self.request) else fill(self.request, c)



def topic(cases: list, says: str) -> list:
    """`cases`, each whose refusal text is not given about `says`."""
    for case in cases:
        case.says = case.says or says
    return cases


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def post(*fields: str, body_of, version: str = "HTTP/1.1", target: str = "/hx/s", method: str = "POST"):
    """A request whose fields may name the body's length ({n}); `body_of(ctx)` is the body."""
    def build(c: Ctx) -> bytes:
        body = body_of(c)
        lines = [f.replace("{n}", str(len(body))) for f in fields]
        return fill(raw(f"{method} {target} {version}", "Host: {host}", *lines), c) + body
    return build


def empty_chunked_then_smuggled(c: Ctx) -> bytes:
    return b"0\r\n\r\n" + c.smuggled


def hello_then_second(c: Ctx) -> bytes:
    """Five bytes of body, then a second request in the same packet."""
    return HELLO + fill(b"GET /hx/second HTTP/1.1\r\nHost: {host}\r\n\r\n", c)


def target_is(expected: str):
    def check(request: AppRequest, c: Ctx):
        assert request.target == expected, f"the app got target {request.target!r}, not {expected!r}"
    return check


def header_count(name: str, count: int):
    def check(request: AppRequest, c: Ctx):
        got = sum(len(value.split(",")) for value in request.values(name))
        assert got == count, f"the app got {got} {name} values, not the {count} sent"
    return check


def no_field(name: str):
    def check(request: AppRequest, c: Ctx):
        assert not request.values(name), f"the app got a {name} field: {request.values(name)}"
    return check


SMUGGLING = topic([
    # RFC 9112 §6.1/§6.3: CL beside TE may be refused, or read as chunked and the connection closed
    # after the answer; either way what follows the chunked body is never a request. CL.TE:
    Case("cl-te", post("Content-Length: {n}", "Transfer-Encoding: chunked", body_of=empty_chunked_then_smuggled),
         REFUSE, smuggled=True),
    # TE.CL: a CL reader would see the smuggled request after four bytes.
    Case("te-cl", post("Transfer-Encoding: chunked", "Content-Length: 4",
                       body_of=lambda c: chunk(c.smuggled) + b"0\r\n\r\n"), REFUSE, smuggled=True),
    Case("get-cl-te", post("Content-Length: {n}", "Transfer-Encoding: chunked", method="GET", target="/hx/a",
                           body_of=empty_chunked_then_smuggled), REFUSE, smuggled=True),
    # §6.3 (5) / RFC 9110 §8.6: differing lengths are unrecoverable.
    Case("two-cl", post("Content-Length: 0", "Content-Length: {n}", body_of=lambda c: c.smuggled),
         REFUSE, smuggled=True),
    Case("two-cl-reversed", post("Content-Length: {n}", "Content-Length: 0", body_of=lambda c: c.smuggled),
         REFUSE, smuggled=True),
    # The same length twice, or as a list, may be accepted as one (RFC 9110 §8.6).
    Case("two-cl-equal", post("Content-Length: 5", "Content-Length: 5", body_of=lambda c: HELLO),
         EITHER, bodies=(HELLO,)),
    Case("cl-list-equal", post("Content-Length: 5, 5", body_of=lambda c: HELLO), EITHER, bodies=(HELLO,)),
    # §6.3 (4): chunked not final -> 400 and close.
    Case("te-chunked-identity", post("Transfer-Encoding: chunked, identity", body_of=empty_chunked_then_smuggled),
         REFUSE, frozenset({400, 501}), smuggled=True),
    Case("te-xchunked", post("Transfer-Encoding: xchunked", body_of=empty_chunked_then_smuggled),
         REFUSE, frozenset({400, 501}), smuggled=True),
    Case("te-chunked-x", post("Transfer-Encoding: chunkedx", body_of=empty_chunked_then_smuggled),
         REFUSE, frozenset({400, 501}), smuggled=True),
    # OWS around the value is no part of it (RFC 9110 §5.5): this is chunked.
    Case("te-space-chunked", post("Transfer-Encoding:    chunked", body_of=lambda c: chunk(HELLO) + b"0\r\n\r\n"),
         EITHER, bodies=(HELLO,)),
    Case("te-tab-chunked", post("Transfer-Encoding:\tchunked\t", body_of=lambda c: chunk(HELLO) + b"0\r\n\r\n"),
         EITHER, bodies=(HELLO,), body_error=True),
    # A vertical tab is not OWS: "\x0bchunked" is an unknown coding.
    Case("te-vtab-chunked", post("Transfer-Encoding: \x0bchunked", body_of=empty_chunked_then_smuggled),
         REFUSE, frozenset({400, 501}), smuggled=True, says=f"{SYNTAX}|{FRAMING}"),
    # §2.2: a whitespace-preceded line right after the request line is refused or ignored; ignored,
    # the body is the CL's (everything after the head), and nothing in it is a request.
    Case("te-line-after-request-line",
         lambda c: fill(b"POST /hx/s HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: {host}\r\n", c)
         + b"Content-Length: %d\r\n\r\n" % len(empty_chunked_then_smuggled(c)) + empty_chunked_then_smuggled(c),
         EITHER, bodies=lambda c: (empty_chunked_then_smuggled(c),), smuggled=True, says=f"{SYNTAX}|{FRAMING}"),
    # §6.1: TE in HTTP/1.0 is faulty framing: refused, or processed and the connection closed.
    Case("te-chunked-http10", post("Transfer-Encoding: chunked", body_of=empty_chunked_then_smuggled,
                                   version="HTTP/1.0"), EITHER, smuggled=True),
    # §7.1: 2^64 + 5 read into 64 bits is 5.
    Case("chunk-size-overflow", post("Transfer-Encoding: chunked",
                                     body_of=lambda c: b"10000000000000005\r\nhello\r\n0\r\n\r\n" + c.smuggled),
         REFUSE, frozenset({400, 413}), smuggled=True, body_error=True),
    Case("chunk-size-overflow-ffff", post("Transfer-Encoding: chunked",
                                          body_of=lambda c: b"ffffffffffffffffffff5\r\nhello\r\n0\r\n\r\n"
                                          + c.smuggled), REFUSE, frozenset({400, 413}), smuggled=True,
         body_error=True),
    Case("cl-negative", post("Content-Length: -5", body_of=lambda c: HELLO + c.smuggled), REFUSE, smuggled=True),
    Case("cl-plus", post("Content-Length: +5", body_of=lambda c: HELLO + c.smuggled), REFUSE, smuggled=True),
    # A body longer than its length: the rest is the next request, answered in its turn.
    Case("cl-then-second-request", post("Content-Length: 5", target="/hx/first", body_of=hello_then_second),
         PASS, answers=2, bodies=(HELLO, b"")),
    Case("get-cl-then-second-request", post("Content-Length: 5", target="/hx/first", method="GET",
                                            body_of=hello_then_second), PASS, answers=2, bodies=(HELLO, b"")),
], FRAMING)

MALFORMED = topic([
    # §2.2: a recipient MAY take a bare LF as a line end; what it forwards must then be CRLF.
    Case("bare-lf", b"GET /hx/a HTTP/1.1\nHost: {host}\n\n", EITHER),
    # A bare LF inside a field line, hiding a TE beside a CL.
    Case("bare-lf-hides-te", post("X-A: 1\nTransfer-Encoding: chunked", "Content-Length: {n}",
                                  body_of=empty_chunked_then_smuggled), EITHER,
         bodies=(b"",), smuggled=True, says=f"{SYNTAX}|{FRAMING}"),
    # RFC 9110 §5.5: CR, LF, NUL in a value: refuse, or replace with SP before forwarding.
    Case("cr-in-value", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A: a\rb"), EITHER),
    Case("nul-in-value", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A: a\x00b"), EITHER),
    Case("del-in-value", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A: a\x7fb"), EITHER),
    # §5.2: obs-fold: refuse, or replace with SP before forwarding.
    Case("obs-fold", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-Folded: a", " b"), EITHER),
    Case("obs-fold-hides-te", post("Content-Length: {n}", "X-A: 1", " Transfer-Encoding: chunked",
                                   body_of=empty_chunked_then_smuggled), EITHER,
         bodies=lambda c: (empty_chunked_then_smuggled(c),), smuggled=True, says=f"{SYNTAX}|{FRAMING}"),
    # §5.1: whitespace before the colon MUST be 400.
    Case("space-before-colon-te", post("Content-Length: {n}", "Transfer-Encoding : chunked",
                                       body_of=empty_chunked_then_smuggled), REFUSE, smuggled=True,
         says=f"{SYNTAX}|{FRAMING}"),
    Case("space-before-colon", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A : 1"), REFUSE),
    Case("nul-in-name", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A\x00b: 1"), REFUSE),
    Case("cr-in-name", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A\rb: 1"), REFUSE),
    Case("del-in-name", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-A\x7fb: 1"), REFUSE),
    Case("header-over-limit", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-Big: " + "a" * 17000), REFUSE,
         frozenset({400, 431}), says=LIMIT),
    Case("many-headers-over-limit", raw("GET /hx/a HTTP/1.1", "Host: {host}",
                                        *[f"X-H{i}: v" for i in range(3000)]), REFUSE, frozenset({400, 431}),
         says=LIMIT),
    Case("many-headers-under-limit", raw("GET /hx/a HTTP/1.1", "Host: {host}", *["X-H: v"] * 1000), EITHER,
         frozenset({400, 431}), check=header_count("x-h", 1000), says=LIMIT),
    Case("target-over-limit", raw("GET /hx/" + "a" * 9000 + " HTTP/1.1", "Host: {host}"), REFUSE,
         frozenset({400, 414}), says=LIMIT),
    Case("method-bad-char", raw("G(T /hx/a HTTP/1.1", "Host: {host}"), REFUSE, frozenset({400, 405, 501}), says=METHOD),
    Case("method-nul", raw("GE\x00T /hx/a HTTP/1.1", "Host: {host}"), REFUSE, frozenset({400, 405, 501}), says=METHOD),
    Case("method-leading-space", raw(" GET /hx/a HTTP/1.1", "Host: {host}"), REFUSE, says=f"{METHOD}|{SYNTAX}"),
    # Valid tokens, unknown methods (methods are case-sensitive): passed on, or 400/405/501.
    Case("method-lowercase", raw("get /hx/a HTTP/1.1", "Host: {host}"), EITHER, frozenset({400, 405, 501}),
         says=METHOD),
    Case("method-unknown", raw("BREW /hx/a HTTP/1.1", "Host: {host}"), EITHER, frozenset({400, 405, 501}), says=METHOD),
    Case("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", REFUSE, frozenset({400, 405, 426, 501, 505}),
         says=r"HTTP"),
    Case("http09", b"GET /hx/a\r\n\r\n", REFUSE, frozenset({400, 505}), says=VERSION),
    Case("http09-version", raw("GET /hx/a HTTP/0.9", "Host: {host}"), REFUSE, frozenset({400, 505}), says=VERSION),
    Case("http30-version", raw("GET /hx/a HTTP/3.0", "Host: {host}"), REFUSE, frozenset({400, 505}), says=VERSION),
    Case("http12-version", raw("GET /hx/a HTTP/1.2", "Host: {host}"), EITHER, frozenset({400, 505}), says=VERSION),
], SYNTAX)

TARGETS = topic([
    # Never an open proxy: another host's absolute form is refused (the allowlist), never fetched.
    Case("absolute-other-host", raw("GET http://evil.example/hx/a HTTP/1.1", "Host: {host}"), REFUSE,
         frozenset({400, 403}), says=HOST_TEXT),
    # §3.2.2: the absolute form's authority replaces Host (127.0.0.1 at any port is allowed); the app
    # gets the origin form with that Host.
    Case("absolute-app-authority", raw("GET http://{app}/hx/a HTTP/1.1", "Host: {host}"), EITHER,
         frozenset({400, 403}), hosts=lambda c: {c.app}, check=target_is("/hx/a")),
    Case("absolute-app-authority-foreign-host", raw("GET http://{app}/hx/a HTTP/1.1", "Host: evil.example"), EITHER,
         frozenset({400, 403}), hosts=lambda c: {c.app}, check=target_is("/hx/a")),
    Case("absolute-userinfo", raw("GET http://{host}@evil.example/hx/a HTTP/1.1", "Host: {host}"), REFUSE,
         frozenset({400, 403})),
    Case("connect-foreign", raw("CONNECT evil.example:443 HTTP/1.1", "Host: evil.example:443"), REFUSE,
         frozenset({400, 403, 405, 501}), says=CONNECT),
    Case("connect-app", raw("CONNECT {app} HTTP/1.1", "Host: {app}"), REFUSE, frozenset({400, 403, 405, 501}),
         says=CONNECT),
    # RFC 9110 §9.3.7: OPTIONS * is about the server; Beacon answers it, or the app does.
    Case("options-asterisk", raw("OPTIONS * HTTP/1.1", "Host: {host}"), EITHER, frozenset({200, 204})),
    Case("get-asterisk", raw("GET * HTTP/1.1", "Host: {host}"), REFUSE),
    # Percent-encoded CRLF stays encoded: the app gets the target as sent, and no header from it.
    # (With a folder, the file lookup first decodes the path and refuses the control bytes with a
    # 400 saying so, before the app is asked: a clear refusal.)
    Case("target-encoded-crlf", raw("GET /hx/a%0d%0aSet-Cookie:%20x=1 HTTP/1.1", "Host: {host}"), EITHER,
         check=all_of(target_is("/hx/a%0d%0aSet-Cookie:%20x=1"), no_field("set-cookie"))),
    Case("target-no-slash", raw("GET hx/a HTTP/1.1", "Host: {host}"), REFUSE),
    Case("target-query-only", raw("GET ?a=1 HTTP/1.1", "Host: {host}"), REFUSE),
    # A path starting with // names no host: it goes to the app as it is.
    Case("target-double-slash", raw("GET //evil.example/hx/a HTTP/1.1", "Host: {host}"), PASS,
         check=target_is("//evil.example/hx/a")),
], TARGET)

HOP_BY_HOP_ABUSE = topic([
    # RFC 9110 §7.6.1: names in Connection are hop-by-hop; the proxy's own fields stay the proxy's.
    Case("connection-lists-beacon-fields", raw("GET /hx/a HTTP/1.1", "Host: {host}",
                                               "Connection: X-Forwarded-For, Host, X-Forwarded-Host, "
                                               "X-Forwarded-Proto"), PASS),
    Case("connection-lists-beacon-fields-post", post("Connection: X-Forwarded-For, Host", "Content-Length: 5",
                                                     body_of=lambda c: HELLO), PASS, bodies=(HELLO,)),
    # The browser's X-Forwarded-For, listed in its Connection, is its hop's: not forwarded.
    Case("connection-lists-spoofed-xff", raw("GET /hx/a HTTP/1.1", "Host: {host}", "Connection: X-Forwarded-For",
                                             "X-Forwarded-For: 6.6.6.6"), PASS),
    Case("hop-by-hop-fields", raw("GET /hx/a HTTP/1.1", "Host: {host}", "Connection: keep-alive, X-Secret",
                                  "X-Secret: for this hop", "Keep-Alive: timeout=99", "TE: trailers",
                                  "Trailer: X-T", "Proxy-Connection: keep-alive",
                                  "Proxy-Authorization: Basic Zm9vOmJhcg=="), PASS),
    # An h2c upgrade on a plain request: ignored (or refused), never a 101, never forwarded.
    Case("upgrade-h2c", raw("GET /hx/a HTTP/1.1", "Host: {host}", "Connection: Upgrade, HTTP2-Settings",
                            "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"), EITHER,
         frozenset({400, 403, 426, 501})),
    # From a client that is not --trust-proxy: its X-Forwarded-Host/-Proto count for nothing, and
    # X-Forwarded-For ends with the real address.
    Case("spoofed-forwarding", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-Forwarded-For: 6.6.6.6",
                                   "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https",
                                   "Forwarded: for=6.6.6.6;host=evil.example;proto=https"), PASS),
    Case("spoofed-forwarding-post", post("X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example",
                                         "X-Forwarded-Proto: https", "Content-Length: 5", body_of=lambda c: HELLO),
         PASS, bodies=(HELLO,)),
    Case("two-xff-fields", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-Forwarded-For: 6.6.6.6",
                               "X-Forwarded-For: 7.7.7.7"), PASS),
    Case("xff-claims-loopback", raw("GET /hx/a HTTP/1.1", "Host: {host}", "X-Forwarded-For: 127.0.0.1, 6.6.6.6"),
         PASS),
], r"\w")

HOST_ABUSE = topic([
    Case("two-hosts", raw("GET /hx/a HTTP/1.1", "Host: {host}", "Host: evil.example"), REFUSE),
    Case("two-hosts-same", raw("GET /hx/a HTTP/1.1", "Host: {host}", "Host: {host}"), REFUSE),
    Case("empty-host", raw("GET /hx/a HTTP/1.1", "Host: "), REFUSE),
    Case("host-with-path", raw("GET /hx/a HTTP/1.1", "Host: {host}/x"), REFUSE),
    Case("host-with-userinfo", raw("GET /hx/a HTTP/1.1", "Host: user@{host}"), REFUSE),
    Case("host-unlisted", raw("GET /hx/a HTTP/1.1", "Host: evil.example"), REFUSE, frozenset({403})),
    Case("host-bare-cr", raw("GET /hx/a HTTP/1.1", "Host: {host}\rX-Injected: 1"), REFUSE,
         says=f"{HOST_TEXT}|{SYNTAX}"),
    # Read with LF as a line end, this is a valid Host and a second field of the browser's.
    Case("host-bare-lf", b"GET /hx/a HTTP/1.1\r\nHost: {host}\nX-Injected: 1\r\n\r\n", EITHER,
         says=f"{HOST_TEXT}|{SYNTAX}"),
    Case("host-encoded-crlf", raw("GET /hx/a HTTP/1.1", "Host: {host}%0d%0aX-Injected:%201"), REFUSE,
         frozenset({400, 403})),
], HOST_TEXT)

CASES = SMUGGLING + MALFORMED + TARGETS + HOP_BY_HOP_ABUSE + HOST_ABUSE
assert len({case.id for case in CASES}) == len(CASES)


def params():
    for case in CASES:
        for variant in VARIANTS:
            yield pytest.param(variant, case, id=f"{variant}-{case.id}")


# MARK: - The checks


def connection_listed(request_bytes: bytes) -> set:
    """Names the browser's Connection fields list (lower-case), but close and keep-alive."""
    head = request_bytes.split(b"\r\n\r\n", 1)[0]
    names = set()
    for line in re.split(rb"\r\n|\n", head)[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"connection":
            for token in value.decode("latin-1").split(","):
                token = token.strip().lower()
                if token and token not in ("close", "keep-alive"):
                    names.add(token)
    return names


def browser_values(request_bytes: bytes, name: str) -> list:
    head = request_bytes.split(b"\r\n\r\n", 1)[0]
    found = []
    for line in re.split(rb"\r\n|\n", head)[1:]:
        field_name, colon, value = line.partition(b":")
        if colon and field_name.strip().lower() == name.encode():
            found.extend(v.strip() for v in value.decode("latin-1").split(","))
    return found


def check_app_request(request: AppRequest, case: Case, c: Ctx, sent: bytes):
    where = f"{request!r}"
    hosts = case.hosts(c) if case.hosts else {c.host}
    assert len(request.values("host")) == 1 and request.values("host")[0] in hosts, (
        f"the app got Host {request.values('host')}, not one of {sorted(hosts)}: {where}")
    bodies = case.bodies(c) if callable(case.bodies) else case.bodies
    assert request.body in bodies, (
        f"the app got a body the browser did not frame so ({request.framing}): {show(request.body)} "
        f"(allowed: {[show(b) for b in bodies]}): {where}")
    if case.smuggled:
        assert request.target != "/hx/smuggled", f"a request hidden in a body reached the app: {where}"
    # No hop-by-hop field of the browser's.
    for name in HOP_BY_HOP:
        values = request.values(name)
        if name == "connection":
            assert all(v.lower() in ("keep-alive", "close") for v in values), f"Connection forwarded: {where}"
        elif name == "transfer-encoding":
            assert request.framing == "chunked" or not values, f"Transfer-Encoding forwarded: {where}"
        else:
            assert not values, f"hop-by-hop {name} forwarded: {values}: {where}"
    listed = connection_listed(sent)
    for name in listed - set(SET_BY_BEACON):
        assert not request.values(name), f"{name}, listed in the browser's Connection, was forwarded: {where}"
    # The proxy's own fields, whatever the browser said or listed.
    forwarded_for = request.values("x-forwarded-for")
    assert len(forwarded_for) == 1 and forwarded_for[0].split(",")[-1].strip() == "127.0.0.1", (
        f"X-Forwarded-For {forwarded_for} does not end with the client's 127.0.0.1: {where}")
    if "x-forwarded-for" in listed:
        spoofed = set(browser_values(sent, "x-forwarded-for"))
        chain = [v.strip() for v in forwarded_for[0].split(",")]
        assert not spoofed & set(chain[:-1]), (
            f"the browser's X-Forwarded-For {sorted(spoofed)}, hop-by-hop by its Connection, was forwarded: {where}")
    assert request.values("x-forwarded-host") == request.values("host"), (
        f"X-Forwarded-Host {request.values('x-forwarded-host')} is not the Host: {where}")
    assert request.values("x-forwarded-proto") == ["http"], (
        f"X-Forwarded-Proto {request.values('x-forwarded-proto')} is not the connection's http: {where}")
    if case.check:
        case.check(request, c)


def probe(beacon, port: int, n: int):
    """(4): a plain GET on a new connection gets the app's 200."""
    if beacon.process.poll() is not None:
        pytest.fail(f"beacon exited (status {beacon.process.returncode})\n{beacon.log()[-3000:]}", pytrace=False)
    browser = Browser(port)
    try:
        browser.send(f"GET {PROBE}{n} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        found, _ = browser.answers(1, "the plain GET after the case")
    finally:
        browser.close()
    assert found and found[0].from_app, f"the plain GET after the case got {found} (not the app's 200)"


PROBES = iter(range(1, 1 << 30))


@pytest.mark.parametrize("variant, case", list(params()))
def test_hostile_request(hub, variant, case):
    beacon = hub.beacon(variant)
    port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
    c = Ctx(port, hub.app.port)
    sent = case.bytes(c)
    mark = hub.app.mark()
    browser = Browser(port)
    try:
        browser.send(sent)
        found, closed = browser.answers(case.answers, f"{case.id} ({variant})")
    finally:
        browser.close()
    time.sleep(0.05)  # a request Beacon would still send the app goes out now, not after the count
    probe(beacon, port, next(PROBES))
    requests, errors, cut, partial = hub.app.since(mark)
    requests = [r for r in requests if not r.target.startswith(PROBE)]
    story = (f"\n  sent:    {show(sent)}\n  Beacon:  {show(browser.received)}"
             f"{' [closed]' if closed else ' [left open]'}\n  app got: {requests}")

    # (2) strictly whole requests at the app.
    assert not errors, (f"the app could not read what Beacon sent: "
                        f"{[(e[1], e[2], show(e[3][-SHOW:])) for e in errors]}" + story)
    assert not partial, f"Beacon left part of a request on an app connection: {partial}" + story
    if case.body_error:
        # At most the head, cut off: no part of the body past the bad chunk, nothing smuggled.
        assert len(cut) <= 1 and all(b"smuggled" not in x[2] and x[2].endswith(b"\r\n\r\n") for x in cut), (
            f"more than the head reached the app: {[(x[1], show(x[2])) for x in cut]}" + story)
        assert found and (found[0].from_app or found[0].status == 400), (
            "a body NIO's decoder refused must get a 400, not a 502" + story)
    else:
        assert not cut, (f"an app connection closed in the middle of a request: "
                         f"{[(x[1], show(x[2])) for x in cut]}" + story)
    for request in requests:
        check_app_request(request, case, c, sent)
    # (3) no request the browser did not get an answer for.
    assert len(requests) <= len(found), (
        f"the app saw {len(requests)} request(s), the browser got {len(found)} answer(s)" + story)

    # (1) the app's answer, or a refusal, or a close.
    print(f"{variant}-{case.id}: " + (", ".join("app 200" if a.from_app else f"Beacon {a.status}" for a in found)
                                      or "no answer") + (", closed" if closed else ", left open")
          + f"; the app saw {len(requests)}")
    if found and found[0].from_app:
        assert case.outcome in (PASS, EITHER), f"expected {case.outcome}, got the app's answer" + story
        assert len(found) == case.answers and all(a.from_app for a in found), (
            f"expected {case.answers} answer(s) from the app, got {found}" + story)
        assert len(requests) == case.answers, f"the app saw {len(requests)} request(s)" + story
    elif found:
        refusal = found[0]
        assert case.outcome in (REFUSE, EITHER), f"expected {case.outcome}, got Beacon's {refusal.status}" + story
        assert refusal.status in case.statuses, (
            f"expected one of {sorted(case.statuses)} (or a close), got {refusal.status}" + story)
        if refusal.status >= 400:
            text = re.sub(r"<style>.*?</style>|<script.*?</script>|<[^>]+>|\s+", " ",
                          refusal.body.decode("utf-8", "replace"), flags=re.S).strip()
            assert text and re.search(case.says, text, re.I), (
                f"the {refusal.status} does not say what was wrong (about /{case.says}/): {text[:300]!r}" + story)
        assert not requests, "the app saw a request Beacon refused" + story
        assert len(found) == 1, f"more answers after Beacon's {refusal.status}: {found[1:]}" + story
    else:
        assert closed, "no answer and the connection still open" + story
        assert case.outcome in (REFUSE, EITHER), f"expected {case.outcome}, got a close without an answer" + story
        assert not requests, "the app saw a request, the browser got no answer" + story
