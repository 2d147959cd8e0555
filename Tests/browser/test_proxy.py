"""`beacon serve --proxy URL` in front of a real Flask dev server, seen from outside as a browser
or a script sees it: every point of the issue's "Proxying" list, the bad cases included."""

import gzip
import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import _free_port, beacon_server, flask_server, wait_for_port

APP_DIR = Path(__file__).parent / "proxy_app"
TAG = b'<script src="/__beacon/client.js"></script>'
WAIT = 10.0


@pytest.fixture
def proxied(tmp_path):
    """Flask (proxy_app/upstream.py) and Beacon in front of it, without a directory."""
    with flask_server(APP_DIR, app="upstream") as (port, _):
        with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}"), site_dir=False) as beacon:
            beacon.upstream_port = port
            yield beacon


def request(server, method, path, body=None, headers=None):
    host, port = server.base_url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def raw(server, data: bytes) -> bytes:
    """Sends bytes as they are and reads until the server closes or pauses (bounded)."""
    port = int(server.base_url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def seen(server):
    _, data = request(server, "GET", "/seen")
    return json.loads(data)


def test_serving_line_names_the_app(proxied):
    assert f"Serving http://127.0.0.1:{proxied.upstream_port} at " in "".join(proxied.stdout_lines)


def test_html_gets_exactly_one_client_tag_and_a_right_framing(proxied):
    response, body = request(proxied, "GET", "/")
    assert response.status == 200 and body.count(TAG) == 1
    assert body.index(TAG) == body.index(b"</body>") - len(TAG)
    assert response.getheader("Content-Length") in (None, str(len(body)))
    _, body = request(proxied, "GET", "/has-client")
    assert body.count(b"/__beacon/client.js") == 1


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_html_is_decoded_and_injected(proxied, coding):
    response, body = request(proxied, "GET", f"/compressed/{coding}")
    assert response.getheader("Content-Encoding") is None
    assert body.count(TAG) == 1 and b"app page" in body


def test_an_encoding_beacon_cannot_decode_passes_untouched_with_one_warning(proxied):
    for _ in range(2):
        response, body = request(proxied, "GET", "/compressed/br")
        assert response.getheader("Content-Encoding") == "br" and body == b"\x0b\x02\x80not-really-br"
    assert proxied.log().count("Content-Encoding 'br'") == 1


def test_beacon_asks_the_app_for_identity_and_forwards_host_and_x_forwarded(proxied):
    request(proxied, "GET", "/?q=1", headers={"Accept-Encoding": "gzip, br"})
    first = [r for r in seen(proxied)["seen"] if r["path"] == "/?q=1"][-1]
    host = proxied.base_url.split("//")[1].rstrip("/")
    assert first["host"] == host
    assert first["headers"]["accept-encoding"] == "identity"
    assert first["headers"]["x-forwarded-host"] == host
    assert first["headers"]["x-forwarded-proto"] == "http"
    assert first["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_hop_by_hop_request_headers_never_reach_the_app(proxied):
    request(proxied, "GET", "/?hop", headers={"Connection": "keep-alive, X-Private", "X-Private": "1",
                                               "Keep-Alive": "timeout=5", "TE": "trailers",
                                               "Proxy-Authorization": "Basic eA=="})
    headers = [r for r in seen(proxied)["seen"] if r["path"] == "/?hop"][-1]["headers"]
    for name in ("x-private", "keep-alive", "te", "proxy-authorization"):
        assert name not in headers
    assert headers.get("connection", "keep-alive").lower() in ("keep-alive", "close")


def test_json_passes_byte_for_byte_with_its_length(proxied):
    response, body = request(proxied, "GET", "/json")
    assert body == b'{"k": "v",  "n": [1,2,3]}\n'
    assert response.getheader("Content-Length") == str(len(body))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_methods_and_bodies_reach_the_app(proxied, method):
    payload = bytes(range(256)) * 4096  # 1 MiB
    response, body = request(proxied, method, "/echo", body=payload, headers={"Content-Type": "application/octet-stream"})
    assert json.loads(body) == {"method": method, "length": len(payload), "sum": sum(payload) % 65536,
                                "type": "application/octet-stream"}


def test_a_chunked_upload_streams_to_the_app(proxied):
    port = int(proxied.base_url.rstrip("/").rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request("POST", "/echo", body=iter([b"a" * 1000, b"b" * 2000]), encode_chunked=True,
                       headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
    assert json.loads(connection.getresponse().read())["length"] == 3000
    connection.close()


def test_redirects_pass_unfollowed_with_the_apps_origin_rewritten_and_every_cookie_kept(proxied):
    up = f"127.0.0.1:{proxied.upstream_port}"
    response, _ = request(proxied, "GET", f"/redirect?to={up}")
    assert response.status == 302
    assert response.getheader("Location") == proxied.base_url + "landing?x=1"
    cookies = response.msg.get_all("Set-Cookie")
    assert cookies == ['session="a b"; Secure; HttpOnly; Path=/; SameSite=Lax',
                       "theme=dark; Path=/; SameSite=Strict",
                       "other=1; Domain=example.test; Path=/"]
    response, _ = request(proxied, "GET", "/redirect?to=elsewhere.test:9")
    assert response.getheader("Location") == "http://elsewhere.test:9/landing?x=1"


def test_a_csp_nonce_goes_onto_the_injected_tag(proxied):
    _, body = request(proxied, "GET", "/csp")
    assert body.count(b'<script src="/__beacon/client.js" nonce="r4nd0m"></script>') == 1


def test_an_apps_event_stream_arrives_unbuffered_and_closes_when_the_browser_leaves(proxied):
    port = int(proxied.base_url.rstrip("/").rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET /events?count=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    delays, buffer = [], b""
    deadline = time.monotonic() + WAIT
    while len(delays) < 10 and time.monotonic() < deadline:
        buffer += sock.recv(65536)
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    delays.append(time.time() - float(line[6:]))
    assert len(delays) == 10, f"only {len(delays)} events within {WAIT} s"
    assert sorted(delays)[8] < 0.05, f"delays: {delays}"  # 9 of 10 within 50 ms
    before = seen(proxied)["streams"]["closed"]
    sock.close()
    deadline = time.monotonic() + WAIT
    while seen(proxied)["streams"]["closed"] == before:
        assert time.monotonic() < deadline, "the app's stream stayed open after the browser left"
        time.sleep(0.05)


def beacon_rss_kib(server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


@pytest.mark.parametrize("path", ["/huge?mb=50", "/huge-binary?mb=50&piece=1008"])
def test_a_50_mb_answer_in_small_pieces_streams_with_bounded_memory(proxied, path):
    # Werkzeug writes the HTML page in 1 KB pieces; the binary one is written the same way.
    request(proxied, "GET", "/")  # warm: client pool, buffers
    before = beacon_rss_kib(proxied)
    port = int(proxied.base_url.rstrip("/").rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)
    response = connection.getresponse()
    total, tail = 0, b""
    while chunk := response.read(1 << 16):
        total += len(chunk)
        tail = (tail + chunk)[-200:]
    connection.close()
    grown = beacon_rss_kib(proxied) - before
    assert total > 50_000_000
    if path.startswith("/huge?"):
        assert tail.count(TAG) == 1
    print(f"50 MB through the proxy ({path}): peak RSS grew by {grown} KiB")
    assert grown < 20 << 10, f"peak memory grew by {grown} KiB for a 50 MB answer"


def test_the_guard_applies_and_no_target_reaches_another_host(proxied):
    # A foreign Host name: refused before the app sees anything.
    answer = raw(proxied, b"GET /?evil HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    answer = raw(proxied, b"GET http://evil.example/?abs HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    # An absolute-form target naming an address: answered by the configured app, nowhere else.
    answer = raw(proxied, b"GET http://10.255.255.1:81/?abs2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b"app page" in answer
    paths = [r["path"] for r in seen(proxied)["seen"]]
    assert "/?abs2" in paths and "/?evil" not in paths and "/?abs" not in paths
    # Beacon's own routes stay Beacon's.
    response, body = request(proxied, "GET", "/__beacon/client.js")
    assert response.status == 200 and b"/__beacon/client.js" not in [r["path"] for r in seen(proxied)["seen"]]


def test_app_down_gives_a_502_page_then_the_app_once_it_answers(tmp_path):
    port = _free_port()
    with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}"), site_dir=False) as beacon:
        assert "nothing answers at" in beacon.log()  # the start-up warning, not an error
        started = time.monotonic()
        response, body = request(beacon, "GET", "/")
        assert response.status == 502 and time.monotonic() - started < 8
        assert f"nothing answers at http://127.0.0.1:{port} — is the app running?".encode() in body
        assert body.count(TAG) == 1
        with flask_server(APP_DIR, app="upstream", port=port):
            response, body = request(beacon, "GET", "/")
            assert response.status == 200 and b"app page" in body


def test_localhost_tries_both_loopback_addresses_and_names_them(tmp_path):
    port = _free_port()
    with beacon_server(tmp_path, extra_args=("--proxy", f"http://localhost:{port}"), site_dir=False) as beacon:
        response, body = request(beacon, "GET", "/")
        assert response.status == 502
        assert b"127.0.0.1" in body and b"::1" in body


def test_a_request_waits_for_an_app_that_comes_up_within_the_retry_time(tmp_path):
    port = _free_port()
    with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}"), site_dir=False) as beacon:
        result = {}
        thread = threading.Thread(target=lambda: result.update(answer=request(beacon, "GET", "/")))
        thread.start()
        with flask_server(APP_DIR, app="upstream", port=port):
            thread.join(WAIT)
        assert result["answer"][0].status == 200


def test_a_malformed_answer_is_a_502_and_beacon_keeps_serving(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def garbage():
        for _ in range(2):
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            connection.close()

    threading.Thread(target=garbage, daemon=True).start()
    with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}"), site_dir=False) as beacon:
        response, body = request(beacon, "GET", "/")
        assert response.status == 502 and b"cannot be read" in body
        response, _ = request(beacon, "GET", "/__beacon/status")
        assert response.status == 200
    listener.close()


def test_with_a_directory_files_come_first_and_the_rest_goes_to_the_app(tmp_path):
    with flask_server(APP_DIR, app="upstream") as (port, _):
        with beacon_server(tmp_path, extra_args=("--proxy", f"http://127.0.0.1:{port}")) as beacon:
            response, body = request(beacon, "GET", "/about.html")
            assert response.status == 200 and b"app page" not in body and body.count(TAG) == 1
            response, body = request(beacon, "GET", "/json")
            assert body == b'{"k": "v",  "n": [1,2,3]}\n'
            response, body = request(beacon, "POST", "/echo", body=b"abc")
            assert json.loads(body)["length"] == 3


def test_a_malformed_proxy_url_is_a_one_line_error(tmp_path):
    import subprocess
    from conftest import _beacon_bin
    done = subprocess.run([str(_beacon_bin()), "serve", "--proxy", "ftp://x", "--port", "0"],
                          capture_output=True, text=True, timeout=WAIT, cwd=tmp_path)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "--proxy" in done.stderr
