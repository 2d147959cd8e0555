"""`beacon serve --proxy URL`: WebSocket upgrades to the app's paths are tunnelled to the app (issue
16, point 7), seen from outside as a browser or a script sees them. The app is a small
standard-library WebSocket echo server (proxy_app/websocket_echo.py)."""

import json
import signal
import socket
import struct
import time

import pytest

from conftest import _free_port, beacon_server
from proxy_app.websocket_echo import FrameReader, echo_app, frame, open_websocket

WAIT = 10.0


@pytest.fixture
def tunnelled(tmp_path):
    """The echo app and Beacon in front of it, without a directory."""
    with echo_app() as app:
        with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{app.port}"), site_dir=False) as beacon:
            beacon.app = app
            beacon.port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
            yield beacon


def until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting until {what}"
        time.sleep(0.02)


def is_closed(sock) -> bool:
    """Whether the peer closed (EOF or reset) before WAIT ran out, reading past what is left."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def status(server) -> dict:
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(b"GET /__beacon/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_messages_echo_both_ways_through_the_tunnel(tunnelled):
    sock, line, fields, frames = open_websocket(tunnelled.port)
    with sock:
        assert line.startswith("HTTP/1.1 101"), line
        assert fields["upgrade"] == ["websocket"]
        # Sent by the app in the same write as its 101: not lost in the switch.
        assert frames.next() == (1, b"welcome")
        messages = [(1, f"message {i}".encode()) for i in range(20)] + [(2, bytes(range(256)) * 1024)]
        for opcode, payload in messages:  # all sent before any is read: both directions at once
            sock.sendall(frame(opcode, payload, mask=True))
        for sent in messages:
            assert frames.next() == sent


def test_the_app_gets_the_browsers_host_and_x_forwarded_and_no_hop_by_hop_field(tunnelled):
    sock, line, _, _ = open_websocket(tunnelled.port, path="/socket?x=1", headers={
        "Connection": "Upgrade, X-Private", "X-Private": "1", "Keep-Alive": "timeout=5",
        "Sec-WebSocket-Protocol": "chat"})
    sock.close()
    assert line.startswith("HTTP/1.1 101")
    request_line, fields = tunnelled.app.upgrades[-1]
    assert request_line == "GET /socket?x=1 HTTP/1.1"
    assert fields["host"] == [f"127.0.0.1:{tunnelled.port}"]
    assert fields["x-forwarded-host"] == [f"127.0.0.1:{tunnelled.port}"]
    assert fields["x-forwarded-for"] == ["127.0.0.1"] and fields["x-forwarded-proto"] == ["http"]
    assert fields["upgrade"] == ["websocket"] and fields["connection"] == ["Upgrade"]
    assert fields["sec-websocket-protocol"] == ["chat"] and "sec-websocket-key" in fields
    assert "x-private" not in fields and "keep-alive" not in fields


def test_a_close_from_the_browser_ends_the_apps_side(tunnelled):
    sock, _, _, frames = open_websocket(tunnelled.port)
    assert frames.next() == (1, b"welcome")
    sock.sendall(frame(8, struct.pack("!H", 1000), mask=True))
    assert frames.next() == (8, struct.pack("!H", 1000))
    assert is_closed(sock), "the browser's connection stayed open after the close handshake"
    sock.close()
    # A browser that just goes away: the app's connection ends too.
    before = tunnelled.app.ended
    sock, _, _, frames = open_websocket(tunnelled.port)
    assert frames.next() == (1, b"welcome")
    sock.close()
    until(lambda: tunnelled.app.ended > before, "the app's side of the tunnel ended")


def test_a_close_from_the_app_ends_the_browsers_side(tunnelled):
    sock, _, _, frames = open_websocket(tunnelled.port)
    with sock:
        assert frames.next() == (1, b"welcome")
        sock.sendall(frame(1, b"bye", mask=True))
        assert frames.next() == (8, struct.pack("!H", 1000))
        # The app closed its output: the browser sees the end, and its own close completes the tunnel.
        assert is_closed(sock)


def test_an_answer_other_than_101_is_relayed_and_the_connection_closes(tunnelled):
    sock, line, fields, frames = open_websocket(tunnelled.port, path="/refuse")
    with sock:
        assert line.startswith("HTTP/1.1 403"), line
        assert fields["connection"] == ["close"]
        assert frames._take(3) == b"no\n"
        assert is_closed(sock)


def test_an_answer_other_than_101_in_a_transfer_coding_beacon_cannot_undo_is_a_502(tunnelled):
    # As on the other paths: relayed, its gzip would reach the browser as the body itself.
    sock, line, fields, frames = open_websocket(tunnelled.port, path="/refuse-gzip")
    with sock:
        assert line.startswith("HTTP/1.1 502"), line
        text = frames._take(int(fields["content-length"][0]))
        assert b"a Transfer-Encoding other than chunked alone" in text, text
        assert is_closed(sock)
    # The tunnel goes on for the next upgrade.
    sock, line, fields, frames = open_websocket(tunnelled.port)
    with sock:
        assert line.startswith("HTTP/1.1 101"), line


def test_another_sites_page_gets_no_tunnel_and_the_guard_applies(tunnelled):
    before = len(tunnelled.app.upgrades)
    sock, line, _, _ = open_websocket(tunnelled.port, headers={"Origin": "http://evil.example"})
    sock.close()
    assert line.startswith("HTTP/1.1 403"), line
    sock, line, _, _ = open_websocket(tunnelled.port, headers={"Host": "evil.example"})
    sock.close()
    assert line.startswith("HTTP/1.1 403"), line  # the Host allowlist (DNS rebinding)
    assert len(tunnelled.app.upgrades) == before
    # The page's own origin is fine.
    sock, line, _, _ = open_websocket(tunnelled.port, headers={"Origin": f"http://127.0.0.1:{tunnelled.port}"})
    sock.close()
    assert line.startswith("HTTP/1.1 101"), line


def test_beacons_own_routes_are_never_tunnelled(tunnelled):
    before = len(tunnelled.app.upgrades)
    for path in ("/__beacon/status", "/__beacon/events"):
        sock, line, _, _ = open_websocket(tunnelled.port, path=path)
        sock.close()
        assert line.startswith("HTTP/1.1 200"), (path, line)
    assert len(tunnelled.app.upgrades) == before


def test_a_tunnel_counts_as_an_open_connection_and_closes_on_shutdown(tunnelled):
    idle = status(tunnelled)["connections"]
    sock, _, _, frames = open_websocket(tunnelled.port)
    with sock:
        assert frames.next() == (1, b"welcome")
        assert status(tunnelled)["connections"] == idle + 1
        started = time.monotonic()
        tunnelled.process.send_signal(signal.SIGTERM)
        assert is_closed(sock), "the tunnel stayed open after SIGTERM"
        tunnelled.process.wait(timeout=WAIT)
        assert time.monotonic() - started < 3


def test_an_app_that_is_down_gives_a_502(tmp_path):
    port = _free_port()
    with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}"), site_dir=False) as beacon:
        beacon_port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
        started = time.monotonic()
        sock, line, _, frames = open_websocket(beacon_port)
        with sock:
            assert line.startswith("HTTP/1.1 502"), line
            assert time.monotonic() - started < 5
            body = frames.buffer
            while chunk := sock.recv(65536):
                body += chunk
            assert f"nothing answers at http://127.0.0.1:{port}".encode() in body


def test_without_proxy_an_upgrade_is_an_ordinary_request(tmp_path):
    with beacon_server(tmp_path) as beacon:
        port = int(beacon.base_url.rstrip("/").rsplit(":", 1)[1])
        sock, line, fields, _ = open_websocket(port, path="/index.html", headers={"Origin": "http://evil.example"})
        sock.close()
        assert line.startswith("HTTP/1.1 200") and fields["content-type"][0].startswith("text/html"), line
