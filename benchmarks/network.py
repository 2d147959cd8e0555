"""Loopback sockets and HTTP: free ports, waiting for a listener, one GET, and a raw-socket SSE client."""
import http.client
import queue
import select
import socket
import time

from .common import LOOPBACK, BenchError, mono_ns


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


def http_get(port, path, timeout=10.0):
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class SSEClient:
    """A raw-socket SSE client (handles chunked transfer encoding), stamping every recv."""

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
        status_line = head.split(b"\r\n", 1)[0].decode()
        if " 200" not in status_line:
            raise BenchError(f"SSE request answered {status_line}")
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.cbuf = b""
        self.cleft = 0
        self.lbuf = b""
        self.ev_name, self.ev_data = None, []
        self.events = queue.Queue()
        self.comments = 0
        self.closed = False
        if rest:
            self.feed(rest, mono_ns())

    def feed(self, b, t):
        """Body bytes received at CLOCK_MONOTONIC `t` (also for callers that recv on the socket themselves)."""
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
        self.feed(b, t)
        return True

    def wait_first_event(self, timeout):
        """Reads until the first event is queued, the stream closes or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while self.events.empty() and not self.closed and time.monotonic() < deadline:
            self.pump(0.2)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
