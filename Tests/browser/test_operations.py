"""Beacon in production: health checks, graceful drain, --trust-proxy, and two instances on one
redis-server behind a real nginx (Debian's nginx-light) configured from the file the README shows.

Everything listens on 127.0.0.1; every wait is bounded; fixtures stop what they started."""

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, beacon_server, flask_server, redis_server
from production import (DRAIN_EXIT, TEMPLATE, Cluster, Fleet, Publisher, RawStream, port_of, publish, ready_status,
                        request, wait_for)


# --- Health --------------------------------------------------------------------------------------

def test_live_and_ready_answer_200_with_json_and_head_works(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        status, headers, body = request(port, "GET", "/__beacon/health/live")
        assert (status, json.loads(body)) == (200, {"status": "live"})
        assert headers["content-type"].startswith("application/json")
        status, _, body = request(port, "GET", "/__beacon/health/ready")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        for path in ("/__beacon/health/live", "/__beacon/health/ready"):
            status, headers, body = request(port, "HEAD", path)
            assert (status, body) == (200, b"")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow(tmp_path, method):
    with beacon_server(tmp_path) as server:
        status, headers, body = request(port_of(server), method, "/__beacon/health/ready")
        assert status == 405
        assert headers["allow"] == "GET, HEAD"
        assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_health_is_guarded_like_status(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        for path in ("/__beacon/health/live", "/__beacon/health/ready"):
            status, _, body = request(port, "GET", path, {"Host": "evil.example"})
            assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
            status, _, body = request(port, "GET", path, {"Origin": "http://evil.example"})
            assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"
            status, _, body = request(port, "GET", path, {"Sec-Fetch-Site": "cross-site"})
            assert status == 403


def test_ready_is_503_while_redis_is_away_and_200_once_it_is_back(tmp_path):
    with redis_server(tmp_path) as redis, beacon_server(tmp_path, "a", ["--redis", redis.url]) as server:
        port = port_of(server)
        assert ready_status(port) == 200
        redis.stop()
        wait_for(lambda: ready_status(port) == 503, "ready said 503 with Redis gone", log=server.log)
        status, headers, body = request(port, "GET", "/__beacon/health/ready")
        answer = json.loads(body)
        assert answer["status"] == "not_ready" and answer["reason"] == "backend_unreachable"
        assert redis.url in answer["message"] and headers["retry-after"] == "1"
        # Still live: the process serves on, and publishes say why they fail.
        assert request(port, "GET", "/__beacon/health/live")[0] == 200
        assert publish(port, "default", "x")[0] == 503
        redis.start()
        wait_for(lambda: ready_status(port) == 200, "ready said 200 with Redis back", log=server.log)
        assert publish(port, "default", "back")[0] == 202


# --- Drain ---------------------------------------------------------------------------------------

def test_sigterm_ends_streams_with_a_short_retry_lets_a_publish_in_flight_finish_and_exits_0(tmp_path):
    with redis_server(tmp_path) as redis, beacon_server(tmp_path, "a", ["--redis", redis.url]) as server:
        port = port_of(server)
        stream = RawStream(port)
        assert stream.status == 200
        assert stream.read_until(lambda text: "event: hello" in text)
        # A publish that got in before the signal: its head is read (100 Continue says so), its
        # body comes after the signal.
        body = json.dumps({"channel": "default", "data": "in flight"}).encode()
        publisher = socket.create_connection(("127.0.0.1", port), timeout=5)
        publisher.sendall(b"POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert publisher.recv(1024).startswith(b"HTTP/1.1 100")
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # The stream ends, between two events, on a short retry.
        assert stream.read_until(lambda _: False, timeout=DRAIN_EXIT) is False and stream.ended, stream.text()
        assert re.search(r"\n\nretry: 250\n\n$", stream.text()), stream.text()
        publisher.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = publisher.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 202") and b"\r\nConnection: close\r\n" in answer, answer
        publisher.close()
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        assert time.monotonic() - signalled < DRAIN_EXIT
        # The event it acknowledged is in Redis: a stream elsewhere replays it.
        with beacon_server(tmp_path, "b", ["--redis", redis.url]) as other:
            replay = RawStream(port_of(other), headers={"Last-Event-ID": "earliest"})
            assert replay.read_until(lambda text: "data: in flight" in text), replay.text()
            replay.close()
        stream.close()


def test_sigterm_ends_a_stream_the_router_serves_with_the_same_short_retry(tmp_path):
    # A stream for a page on a --cors origin takes the router's path, not the pipeline's.
    with beacon_server(tmp_path, extra_args=["--cors", "http://pages.example.test"]) as server:
        stream = RawStream(port_of(server), headers={"Origin": "http://pages.example.test"})
        assert stream.status == 200
        assert stream.read_until(lambda text: "event: hello" in text)
        server.process.send_signal(signal.SIGTERM)
        stream.read_until(lambda _: False, timeout=DRAIN_EXIT)
        assert stream.ended and re.search(r"\n\nretry: 250\n\n$", stream.text()), stream.text()
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        stream.close()


def test_ready_says_503_draining_on_a_kept_alive_connection_during_the_drain(tmp_path):
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        # A health checker's kept-alive connection, as a proxy's would be.
        checker = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        checker.request("GET", "/__beacon/health/ready")
        first = checker.getresponse()
        assert (first.status, json.loads(first.read())) == (200, {"status": "ready"})
        server.process.send_signal(signal.SIGTERM)
        # Asked again at once, on the same connection, until an answer says the connection ends:
        # ready until the signal is handled, then 503 for good — the last one too, given once
        # the server is closing connections (it keeps this one a moment for a request on its way).
        deadline = time.monotonic() + DRAIN_EXIT
        statuses = []
        while time.monotonic() < deadline:
            checker.request("GET", "/__beacon/health/ready")
            answer = checker.getresponse()
            body = json.loads(answer.read())
            statuses.append(answer.status)
            if answer.getheader("Connection") == "close":
                break
        assert answer.getheader("Connection") == "close", statuses
        assert answer.status == 503 and body["reason"] == "draining", body
        first_503 = statuses.index(503)
        assert set(statuses[:first_503]) <= {200} and set(statuses[first_503:]) == {503}, statuses
        checker.close()

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except OSError:
                return True

        wait_for(refused, "the listener closed", timeout=DRAIN_EXIT)
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()


def test_a_drain_that_outlasts_its_timeout_still_exits_0(tmp_path):
    with beacon_server(tmp_path, extra_args=["--drain-timeout", "1"]) as server:
        port = port_of(server)
        # A publish whose body never comes holds its connection open.
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        stuck.sendall(b"POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n")
        assert stuck.recv(1024).startswith(b"HTTP/1.1 100")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DRAIN_EXIT) == 0, server.log()
        assert "the drain used its whole --drain-timeout (1 s)" in server.log()
        stuck.close()


def test_bad_drain_timeout_is_one_line_and_exit_1(tmp_path):
    for value in ("0", "-1", "nan", "abc"):
        result = subprocess.run([os.environ.get("BEACON_BIN", str(REPO_ROOT / ".build/debug/beacon")), "serve",
                                 str(tmp_path), "--drain-timeout", value], capture_output=True, text=True, timeout=10)
        assert result.returncode != 0
        assert "drain-timeout" in result.stderr


# --- Behind nginx --------------------------------------------------------------------------------

@pytest.fixture
def cluster(tmp_path):
    with contextlib.ExitStack() as stack:
        yield Cluster(tmp_path, stack)


def test_the_readme_shows_the_tested_nginx_configuration():
    readme = (REPO_ROOT / "README.md").read_text()
    assert TEMPLATE.read_text().strip() in readme


def test_pages_get_the_client_through_nginx(cluster):
    for _ in range(4):  # both instances, round robin
        status, headers, body = request(cluster.nginx, "GET", "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"/__beacon/client.js" in body
    status, headers, body = request(cluster.nginx, "GET", "/__beacon/client.js")
    assert status == 200 and "javascript" in headers["content-type"]


def test_an_event_published_through_nginx_reaches_a_stream_through_nginx(cluster):
    streams = [RawStream(cluster.nginx, "ops") for _ in range(2)]  # one on each instance
    try:
        for stream in streams:
            assert stream.status == 200
            assert stream.read_until(lambda text: "event: hello" in text), stream.text()
        published = time.monotonic()
        status, body = publish(cluster.nginx, "ops", "through nginx")
        assert status == 202, body
        for stream in streams:
            # Unbuffered: it arrives at once (bounded generously; the bound is not the measure).
            assert stream.read_until(lambda text: "data: through nginx" in text, timeout=2.0), stream.text()
        assert time.monotonic() - published < 2.0
    finally:
        for stream in streams:
            stream.close()


# --- --trust-proxy -------------------------------------------------------------------------------

# Loopback is 127.0.0.0/8: a client bound to 127.0.0.2 is "the proxy", one on 127.0.0.1 is not.
PROXY = "127.0.0.2"
ALLOWED = "app.example.test"


@pytest.fixture
def behind_proxy(tmp_path):
    with beacon_server(tmp_path, extra_args=["--trust-proxy", f"{PROXY}/32", "--trust-proxy", "fd00::/8",
                                             "--allow-host", ALLOWED]) as server:
        yield port_of(server)


def test_a_trusted_proxys_forwarded_host_is_the_one_checked(behind_proxy):
    port = behind_proxy
    local = f"127.0.0.1:{port}"
    # Outside the allowlist: refused, though Host is fine.
    status, _, _ = request(port, "GET", "/", {"Host": local, "X-Forwarded-Host": "evil.example"}, source=PROXY)
    assert status == 403
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "evil.example"},
                              source=PROXY)
    assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
    # Allowed: passes, though Host is a name Beacon does not answer to.
    status, _, body = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": ALLOWED}, source=PROXY)
    assert status == 200 and b"/__beacon/client.js" in body
    # Malformed from the proxy: a clear 400.
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "a b"}, source=PROXY)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_forwarded_host"
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Proto": "gopher"},
                              source=PROXY)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_forwarded_proto"
    # The server serves on.
    assert request(port, "GET", "/__beacon/health/live")[0] == 200


def test_forwarded_headers_from_anyone_else_are_ignored(behind_proxy):
    port = behind_proxy
    local = f"127.0.0.1:{port}"
    status, _, _ = request(port, "GET", "/", {"Host": local, "X-Forwarded-Host": "evil.example"})
    assert status == 200
    status, _, body = request(port, "GET", "/__beacon/status", {"Host": "evil.example", "X-Forwarded-Host": ALLOWED})
    assert status == 403 and json.loads(body)["error"]["code"] == "unknown_host"
    status, _, _ = request(port, "GET", "/__beacon/status", {"Host": local, "X-Forwarded-Host": "a b",
                                                             "X-Forwarded-Proto": "gopher"})
    assert status == 200


def test_an_https_page_behind_the_proxy_may_publish_and_one_elsewhere_may_not(behind_proxy):
    port = behind_proxy
    page = {"Origin": f"https://{ALLOWED}", "X-Forwarded-Host": ALLOWED, "X-Forwarded-Proto": "https"}
    status, body = publish(port, "default", "from https", headers={"Host": "beacon-upstream", **page},
                           source=PROXY)
    assert status == 202, body
    # The same headers from a peer that is not the proxy: Origin is compared with http://Host.
    status, _, body = request(port, "POST", "/__beacon/publish",
                              {"Content-Type": "application/json", "Host": ALLOWED, **page},
                              json.dumps({"channel": "default", "data": "x"}))
    assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"
    # From the proxy, a page of another site is still another site.
    status, _, body = request(port, "POST", "/__beacon/publish",
                              {"Content-Type": "application/json", "Host": "beacon-upstream", **page,
                               "Origin": "https://evil.example"},
                              json.dumps({"channel": "default", "data": "x"}), source=PROXY)
    assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"


def test_the_app_behind_proxy_is_told_the_forwarded_scheme_and_host(tmp_path):
    app_dir = Path(__file__).parent / "proxy_app"
    with flask_server(app_dir, app="upstream") as (app_port, _), \
            beacon_server(tmp_path, extra_args=["--proxy", f"http://127.0.0.1:{app_port}", "--trust-proxy", PROXY,
                                                "--allow-host", ALLOWED], site_dir=False) as server:
        port = port_of(server)
        forwarded = {"Host": "beacon-upstream", "X-Forwarded-Host": ALLOWED, "X-Forwarded-Proto": "https"}
        # The app's redirect to its own origin comes back as one to the browser's: https, the public host.
        status, headers, _ = request(port, "GET", f"/redirect?to=127.0.0.1:{app_port}&n=1", forwarded, source=PROXY)
        assert status in (301, 302, 303, 307, 308)
        assert headers["location"] == f"https://{ALLOWED}/landing?x=1"
        # From anyone else the same headers are ignored: the app hears http and the real Host.
        status, headers, _ = request(port, "GET", f"/redirect?to=127.0.0.1:{app_port}&n=2",
                                     {**forwarded, "Host": f"127.0.0.1:{port}"})
        assert headers["location"] == f"http://127.0.0.1:{port}/landing?x=1"
        _, _, body = request(port, "GET", "/seen")
        seen = {r["path"]: r for r in json.loads(body)["seen"]}
        trusted = seen[f"/redirect?to=127.0.0.1:{app_port}&n=1"]
        assert (trusted["host"], trusted["headers"]["x-forwarded-proto"]) == (ALLOWED, "https")
        assert trusted["headers"]["x-forwarded-host"] == ALLOWED
        other = seen[f"/redirect?to=127.0.0.1:{app_port}&n=2"]
        assert (other["host"], other["headers"]["x-forwarded-proto"]) == (f"127.0.0.1:{port}", "http")
        assert other["headers"]["x-forwarded-host"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("args, env", [
    (["--trust-proxy", "10.0.0.0/33"], {}),
    (["--trust-proxy", "proxy.example"], {}),
    (["--trust-proxy", "::1/129"], {}),
    (["--trust-proxy", ""], {}),
    ([], {"BEACON_TRUST_PROXY": "127.0.0.1, not-an-address"}),
])
def test_a_malformed_trust_proxy_is_one_line_and_exit_1(tmp_path, args, env):
    binary = os.environ.get("BEACON_BIN", str(REPO_ROOT / ".build/debug/beacon"))
    result = subprocess.run([binary, "serve", str(tmp_path), "--port", "0", *args], capture_output=True, text=True,
                            timeout=10, env={**os.environ, **env})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ("--trust-proxy" in lines[0] or "BEACON_TRUST_PROXY" in lines[0]), result.stderr


def test_beacon_trust_proxy_lists_the_proxies(tmp_path, monkeypatch):
    monkeypatch.setenv("BEACON_TRUST_PROXY", f"10.0.0.0/8, {PROXY}")
    with beacon_server(tmp_path) as server:
        port = port_of(server)
        status, _, _ = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": "127.0.0.1"},
                               source=PROXY)
        assert status == 200
        status, _, _ = request(port, "GET", "/", {"Host": "beacon-upstream", "X-Forwarded-Host": "127.0.0.1"})
        assert status == 403


# --- Rolling restart -----------------------------------------------------------------------------

def test_a_rolling_restart_behind_nginx_loses_no_acknowledged_event_and_repeats_none(cluster):
    subscribers, publishers = 100, 8
    fleet = Fleet(cluster.nginx, subscribers, "roll")
    fleet.start()
    try:
        wait_for(lambda: fleet.all(lambda s: s.hello), f"all {subscribers} streams through nginx had their hello",
                 log=cluster.log)
        restarting = threading.Event()
        restarting.set()
        deadline = time.monotonic() + 30
        workers = [Publisher(cluster.nginx, "roll", f"p{i}", restarting.is_set, 20, deadline) for i in range(publishers)]
        for worker in workers:
            worker.start()
        time.sleep(0.3)  # publishes in flight on both instances before the first restart
        # As an operator would: restart one, wait until it is ready and the proxy sends it
        # traffic again (nginx takes a refusing instance out for fail_timeout), then the next.
        drains = []
        for index in (0, 1):
            drains.append(cluster.restart(index))
            wait_for(lambda: ready_status(cluster.ports[index]) == 200, f"{'AB'[index]} was ready again", log=cluster.log)
            wait_for(lambda: cluster.routed_to(index), f"nginx sent requests to {'AB'[index]} again", log=cluster.log)
        time.sleep(0.3)
        restarting.clear()
        for worker in workers:
            worker.join(timeout=40)
        failures = [failure for worker in workers for failure in worker.failures]
        assert not failures, failures
        acknowledged = {worker.name: worker.acknowledged for worker in workers}
        total = sum(len(events) for events in acknowledged.values())
        expected_last = {name: events[-1] for name, events in acknowledged.items()}

        def caught_up(subscriber) -> bool:
            return all(name_last in subscriber.data for name_last in expected_last.values())

        wait_for(lambda: fleet.all(caught_up), "every stream had every publisher's last event", log=cluster.log)
    finally:
        fleet.stop()
    for index, subscriber in enumerate(fleet.subscribers):
        assert not subscriber.errors, f"subscriber {index}: {subscriber.errors}"
        for name, events in acknowledged.items():
            seen = [text for text in subscriber.data if text.startswith(name + "-")]
            # Exactly once and in order: what each publisher had acknowledged, nothing more, nothing twice.
            assert seen == events, f"subscriber {index}, {name}: got {seen}, acknowledged {events}"
    reconnected = sum(1 for subscriber in fleet.subscribers if subscriber.connections > 1)
    # Each instance held some of the streams when it restarted.
    assert reconnected > 0
    print(f"\nrolling restart: {total} events from {publishers} publishers "
          f"({sum(w.retries for w in workers)} retries: {[w.statuses for w in workers]}), {subscribers} streams, {reconnected} reconnected "
          f"({sum(s.connections - 1 for s in fleet.subscribers)} reconnects), drains {drains[0]:.2f} s and {drains[1]:.2f} s")
