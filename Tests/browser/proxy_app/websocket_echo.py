"""A WebSocket echo app for the proxy's tunnel tests, standard library only (RFC 6455 by hand), and
the few client calls a test needs to speak WebSocket through Beacon.

The app: `GET /` without an upgrade is a small HTML page (for the browser test); an upgrade to
`/refuse` is answered `403` (`/refuse-gzip` too, in a transfer coding Beacon cannot undo); any other upgrade gets its `101` and, in the same write, a `welcome`
text frame (bytes right behind the 101 must reach the browser). Then every text or binary frame is
echoed; `bye` makes the app send a close frame and close; a close frame is answered and closed.
Each upgrade's head and each connection that ended are recorded for the tests to read."""

import base64
import contextlib
import gzip
import hashlib
import os
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAGE = b"<!doctype html><html><head><title>ws</title></head><body><h1>echo page</h1></body></html>"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def read_head(sock) -> tuple[bytes, bytes]:
    """The bytes up to the empty line, and whatever came behind them in the same reads."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the end of a head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def parse_head(head: bytes) -> tuple[str, dict]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], fields


def frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    """One final frame; clients mask, servers do not (RFC 6455 §5.1)."""
    length = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class FrameReader:
    """Reads frames from a socket, starting with bytes already read (behind a head)."""

    def __init__(self, sock, buffered: bytes = b""):
        self.sock, self.buffer = sock, buffered

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(65536, count - len(self.buffer)))
            if not chunk:
                raise EOFError("the connection closed")
            self.buffer += chunk
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken

    def next(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        opcode, masked, length = first & 0x0F, second & 0x80, second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        key = self._take(4) if masked else None
        payload = self._take(length)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return opcode, payload


class EchoApp:
    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upgrades = []  # (request line, fields) of each upgrade that reached the app
        self.ended = 0  # connections whose client side ended (EOF or close frame)
        self.lock = threading.Lock()

    def serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, sock):
        with sock:
            try:
                head, rest = read_head(sock)
                line, fields = parse_head(head)
                if "upgrade" not in fields:
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(PAGE) + PAGE)
                    return
                with self.lock:
                    self.upgrades.append((line, fields))
                if line.split()[1] == "/refuse":
                    sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n")
                    return
                if line.split()[1] == "/refuse-gzip":
                    # A transfer coding Beacon cannot undo (gzip of "no\n", then chunked).
                    body = gzip.compress(b"no\n", mtime=0)
                    sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                                 b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                                 + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
                    return
                accept = accept_key(fields["sec-websocket-key"][0])
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n" + frame(1, b"welcome", False))
                self.echo(sock, FrameReader(sock, rest))
            except (OSError, EOFError, ConnectionError):
                pass
            finally:
                with self.lock:
                    self.ended += 1

    def echo(self, sock, reader):
        while True:
            opcode, payload = reader.next()
            if opcode == 8:
                sock.sendall(frame(8, payload, False))
                return
            if opcode == 1 and payload == b"bye":
                sock.sendall(frame(8, struct.pack("!H", 1000), False))
                sock.shutdown(socket.SHUT_WR)
                return
            if opcode in (1, 2):
                sock.sendall(frame(opcode, payload, False))


@contextlib.contextmanager
def echo_app():
    """The echo app on a free loopback port until the block ends."""
    app = EchoApp()
    threading.Thread(target=app.serve, daemon=True).start()
    try:
        yield app
    finally:
        app.listener.close()


def open_websocket(port: int, path: str = "/ws", headers=None, timeout: float = 10.0, wrap=None):
    """Sends an upgrade to 127.0.0.1:PORT; returns (socket, status line, fields, frame reader).
    wrap(socket) -> socket: TLS, for a server started with --https."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if wrap:
        sock = wrap(sock)
    key = base64.b64encode(os.urandom(16)).decode()
    fields = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", **(headers or {})}
    sock.sendall(f"GET {path} HTTP/1.1\r\n".encode()
                 + "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")
    head, rest = read_head(sock)
    line, answer = parse_head(head)
    if line.split()[1] == "101":
        assert answer["sec-websocket-accept"] == [accept_key(key)], answer
    return sock, line, answer, FrameReader(sock, rest)
