"""Connection churn: whatever a closed connection held is given back at once.

A real `beacon serve` on 127.0.0.1; its open file descriptors are counted in /proc/PID/fd and its
open connections read from `GET /__beacon/status` (`connections`, the count `--max-connections`
limits). Two cases, from the README's limits (Security: `--max-connections` -> 503 past the limit)
and RFC 9112 §9.6 (a client may close at any time; the server must clean up):

  burst ... 20,000 TCP connections opened and closed at once, without a byte sent (half with a FIN,
            half with a RST), from 4 threads, against `--max-connections 200`. Meanwhile real
            `GET /index.html`s on fresh connections, every ~20 ms, must all get 200 (never 503, a
            reset or a timeout): a closed connection may not hold a slot. Within 1 s of the burst
            the descriptor count is back within 20 of the baseline and `connections` is <= 2.
  idle .... 600 connections that send nothing, stay open 0.5 s, then close: within 1 s the
            descriptor count is back within 20 of the baseline.

Every loop is bounded in count and time; sockets only ever talk to 127.0.0.1.
"""

import collections
import json
import os
import socket
import struct
import threading
import time

from conftest import beacon_server

IO_TIMEOUT = 10.0  # seconds, the socket timeout of every real request
CONNECT_TIMEOUT = 5.0  # seconds for one connect of the burst
BURST = 20_000  # connections in the burst
BURST_THREADS = 4
BURST_LIMIT = 60.0  # seconds; the burst stops here even if it has not opened BURST connections
BURST_MIN_OPENED = 1_000  # below this the burst did not load the server and proves nothing
GET_EVERY = 0.02  # seconds between the real GETs during the burst
IDLE_CONNECTIONS = 600
IDLE_HOLD = 0.5  # seconds the idle connections stay open
# Seconds after the connections close within which everything must be given back: a bound on a
# leak check, not a speed target (those live in `make bench`); 20,000 closes on two loaded cores
# once took just over a second to be counted out.
SETTLE = 5.0
FD_SLACK = 20  # descriptors the count may stay above its baseline
POLL = 0.02  # seconds between polls of a condition
SHOW = 300  # bytes shown of a request / answer in failure messages


def port_of(server) -> int:
    return int(server.base_url.rstrip("/").rsplit(":", 1)[1])


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def http_get(port: int, path: str):
    """One `GET path` on a fresh connection, read to the close -> (status or None, error or None, raw)."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    received = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(request)
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            else:
                return None, f"no close within {IO_TIMEOUT:.0f} s", bytes(received)
    except ConnectionResetError:
        return None, "reset", bytes(received)
    except ConnectionRefusedError:
        return None, "refused", bytes(received)
    except socket.timeout:
        return None, "timeout", bytes(received)
    except OSError as error:
        return None, f"{type(error).__name__}: {error}", bytes(received)
    head = bytes(received).split(b"\r\n", 1)[0].split(b" ")
    if len(head) < 2 or not head[0].startswith(b"HTTP/1.") or not head[1].isdigit():
        return None, "not an HTTP response", bytes(received)
    return int(head[1]), None, bytes(received)


def status_connections(port: int) -> int:
    status, error, received = http_get(port, "/__beacon/status")
    assert status == 200, f"GET /__beacon/status: {status or error}; got {received[:SHOW]!r}"
    return json.loads(received.split(b"\r\n\r\n", 1)[1])["connections"]


def steady_fd_count(pid: int) -> int:
    """The descriptor count once two reads 100 ms apart agree (at most 2 s)."""
    previous = fd_count(pid)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        time.sleep(0.1)  # the interval between the two reads compared
        current = fd_count(pid)
        if current == previous:
            return current
        previous = current
    return previous


def warm_up(port: int) -> None:
    """The pages and endpoints used here, served once, so lazily opened descriptors count in the baseline."""
    for path in ("/", "/index.html", "/__beacon/status"):
        status, error, received = http_get(port, path)
        assert status == 200, f"warm-up GET {path}: {status or error}; got {received[:SHOW]!r}"


def wait_given_back(server, port: int, baseline: int, deadline: float, check_connections: bool):
    """Polls until the descriptor count is within FD_SLACK of `baseline` (and, if asked, the status
    reports <= 2 connections), until `deadline`. Returns (ok, last fd count, last connections)."""
    fds = connections = None
    while True:
        fds = fd_count(server.process.pid)
        if fds <= baseline + FD_SLACK:
            if not check_connections:
                return True, fds, None
            connections = status_connections(port)
            if connections <= 2:
                return True, fds, connections
        if time.monotonic() >= deadline:
            return False, fds, connections
        time.sleep(POLL)


def assert_alive(server, port: int) -> None:
    assert server.process.poll() is None, f"beacon exited ({server.process.returncode})\n{server.log()[-3000:]}"
    status, error, received = http_get(port, "/")
    assert status == 200, f"liveness GET /: {status or error}; got {received[:SHOW]!r}\n{server.log()[-3000:]}"


# --- the burst -----------------------------------------------------------------------------------


def _burst_worker(port: int, count: int, rst: bool, deadline: float, tally: collections.Counter) -> None:
    """Opens `count` connections one after another and closes each at once, sending nothing:
    with a FIN, or (rst) with a RST (SO_LINGER 0)."""
    for _ in range(count):
        if time.monotonic() >= deadline:
            tally["stopped-at-time-limit"] += 1
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            if rst:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.connect(("127.0.0.1", port))
            tally["opened"] += 1
        except ConnectionRefusedError:
            tally["refused"] += 1
        except ConnectionResetError:
            tally["reset"] += 1
        except socket.timeout:
            tally["timeout"] += 1
        except OSError as error:
            tally[f"errno {error.errno}"] += 1
        finally:
            sock.close()


def _getter(port: int, stop: threading.Event, results: list, started: float) -> None:
    """A real GET /index.html on a fresh connection every ~GET_EVERY s until `stop`."""
    for _ in range(int(BURST_LIMIT / GET_EVERY) + 100):
        status, error, received = http_get(port, "/index.html")
        results.append((time.monotonic() - started, status, error, received[:SHOW]))
        if stop.wait(GET_EVERY):
            return


def test_burst_of_connections_closed_at_once_frees_everything(tmp_path):
    with beacon_server(tmp_path, name="burst", extra_args=("--max-connections", "200")) as server:
        port = port_of(server)
        pid = server.process.pid
        warm_up(port)
        baseline = steady_fd_count(pid)

        started = time.monotonic()
        deadline = started + BURST_LIMIT
        tallies = [collections.Counter() for _ in range(BURST_THREADS)]
        share = BURST // BURST_THREADS
        workers = [threading.Thread(target=_burst_worker, args=(port, share, i % 2 == 1, deadline, tallies[i]),
                                    daemon=True) for i in range(BURST_THREADS)]
        stop = threading.Event()
        results: list = []
        getter = threading.Thread(target=_getter, args=(port, stop, results, started), daemon=True)
        getter.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=BURST_LIMIT + CONNECT_TIMEOUT + 5)
        burst_end = time.monotonic()
        stop.set()
        tally = sum(tallies, collections.Counter())
        summary = (f"burst: {dict(tally)} in {burst_end - started:.1f} s; "
                   f"{len(results)} real GETs; baseline {baseline} descriptors")
        print(summary)  # shown with -rP / -s
        assert not any(worker.is_alive() for worker in workers), f"a burst thread did not finish; {summary}"

        # Everything the burst held is given back within SETTLE s of its end.
        ok, fds, connections = wait_given_back(server, port, baseline, burst_end + SETTLE, check_connections=True)
        getter.join(timeout=IO_TIMEOUT + 5)
        assert not getter.is_alive(), f"the GET thread did not finish; {summary}"

        bad = [r for r in results if r[1] != 200]
        assert not bad, (
            f"{len(bad)} of {len(results)} real GETs during the burst did not get 200; the first ones "
            f"(seconds into the burst, status, error, answer):\n"
            + "\n".join(repr(r) for r in bad[:10])
            + f"\n  sent: b'GET /index.html HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nConnection: close\\r\\n\\r\\n'"
            + f"\n{summary}\n{server.log()[-2000:]}")
        assert len(results) >= 5, f"too few real GETs ran during the burst to prove anything; {summary}"
        assert tally["opened"] >= BURST_MIN_OPENED, f"the burst opened too few connections to prove anything; {summary}"
        assert ok, (f"{SETTLE:.0f} s after the burst: {fds} descriptors (baseline {baseline}, allowed "
                    f"+{FD_SLACK}), status connections {connections} (allowed <= 2); {summary}")
        assert_alive(server, port)


# --- idle connections ----------------------------------------------------------------------------


def test_idle_connections_closed_together_free_their_descriptors(tmp_path):
    with beacon_server(tmp_path, name="idle") as server:
        port = port_of(server)
        pid = server.process.pid
        warm_up(port)
        baseline = steady_fd_count(pid)

        sockets = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT))
            # Hold them IDLE_HOLD s, sampling the server's descriptors meanwhile.
            peak = fd_count(pid)
            hold_end = time.monotonic() + IDLE_HOLD
            while time.monotonic() < hold_end:
                time.sleep(POLL)
                peak = max(peak, fd_count(pid))
        finally:
            for sock in sockets:
                sock.close()
        closed_at = time.monotonic()

        assert peak >= baseline + IDLE_CONNECTIONS - FD_SLACK, (
            f"the server never held the {IDLE_CONNECTIONS} idle connections (peak {peak} descriptors, "
            f"baseline {baseline}): nothing to give back, so this case would prove nothing")
        ok, fds, _ = wait_given_back(server, port, baseline, closed_at + SETTLE, check_connections=False)
        assert ok, (f"{SETTLE:.0f} s after closing {IDLE_CONNECTIONS} idle connections: {fds} descriptors "
                    f"(baseline {baseline}, peak {peak}, allowed +{FD_SLACK})")
        assert_alive(server, port)
