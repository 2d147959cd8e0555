"""`GET /__beacon/metrics`: Prometheus's text format, read as a scraper reads it, after real
traffic — answers by status class, streams per channel, publishes and their latency, delivered
events, replays and resets, watcher events, Redis round trips — guarded like the status, and gone
with `--no-metrics`."""
import http.client
import re
import subprocess
import time
import urllib.parse

from conftest import _beacon_bin, beacon_server
from helpers import StreamRecorder, write_in_place

WAIT = 10.0
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def get(server, path, method="GET", headers=None):
    parts = urllib.parse.urlsplit(server.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def scrape(server):
    """{(name, labels): value} from the text format; every line must be a comment or a sample."""
    response, body = get(server, "/__beacon/metrics")
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


def wait_for(server, predicate, what):
    deadline = time.monotonic() + WAIT
    while True:
        samples = scrape(server)
        if predicate(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; metrics: {samples}")
        time.sleep(0.05)


def publish(server, channel, data):
    result = subprocess.run([str(_beacon_bin()), "publish", "--url", server.base_url, "--channel", channel, data],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_metrics_count_real_traffic(tmp_path):
    with beacon_server(tmp_path) as server:
        before = scrape(server)
        assert get(server, "/")[0].status == 200
        assert get(server, "/missing.html")[0].status == 404
        stream = StreamRecorder(server, "/__beacon/events?channel=news")
        try:
            stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "the hello")
            first = publish(server, "news", "one")
            publish(server, "news", "two")
            stream.wait_for(lambda events: any(data == "two" for _, _, data in events), "both events")
            samples = wait_for(server, lambda s: s.get(("beacon_events_delivered_total", ""), 0) >= 2, "deliveries")
            assert samples[("beacon_streams_open", '{channel="news"}')] == 1
            assert samples[("beacon_publishes_total", "")] == 2
            assert samples[("beacon_publish_duration_seconds_count", "")] == 2
            assert samples[("beacon_events_received_total", "")] >= 2
            assert samples[("beacon_connections_open", "")] >= 1
            ok = samples[("beacon_http_responses_total", '{class="2xx"}')]
            missing = samples[("beacon_http_responses_total", '{class="4xx"}')]
            assert ok - before.get(("beacon_http_responses_total", '{class="2xx"}'), 0) >= 4  # page, stream, 2 publishes
            assert missing - before.get(("beacon_http_responses_total", '{class="4xx"}'), 0) >= 1
        finally:
            stream.close()

        # A reconnect that replays what it missed, and one whose id is past the history.
        replay = StreamRecorder(server, "/__beacon/events?channel=news", headers={"Last-Event-ID": first})
        reset = StreamRecorder(server, "/__beacon/events?channel=news", headers={"Last-Event-ID": "1-1"})
        try:
            replay.wait_for(lambda events: any(data == "two" for _, _, data in events), "the replay")
            reset.wait_for(lambda events: any(name == "reset" for _, name, _ in events), "the reset")
            samples = wait_for(server, lambda s: s[("beacon_replays_total", "")] >= 1
                               and s[("beacon_resets_total", "")] >= 1, "a replay and a reset")
        finally:
            replay.close()
            reset.close()

        write_in_place(server.site_dir / "style.css", "body { color: red; }\n")
        wait_for(server, lambda s: s[("beacon_watcher_events_total", "")] >= 1, "the watcher's event")
        wait_for(server, lambda s: s.get(("beacon_streams_open", '{channel="news"}'), 0) == 0,
                 "the closed streams leave the gauge")


def test_metrics_are_guarded_and_can_be_turned_off(tmp_path):
    with beacon_server(tmp_path) as server:
        assert get(server, "/__beacon/metrics", headers={"Sec-Fetch-Site": "cross-site"})[0].status == 403
        assert get(server, "/__beacon/metrics", headers={"Host": "evil.example"})[0].status == 403
        response, body = get(server, "/__beacon/metrics", method="HEAD")
        assert response.status == 200 and body == b""
    with beacon_server(tmp_path, name="off", extra_args=["--no-metrics"]) as server:
        assert get(server, "/__beacon/metrics")[0].status == 404


def test_private_channel_names_stay_out_of_the_metrics(tmp_path):
    key = "k" * 40
    with beacon_server(tmp_path, extra_args=["--private", "secret.**", "--jwt-key", key]) as server:
        token = subprocess.run([str(_beacon_bin()), "token", "--subscribe", "secret.**", "--jwt-key", key],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        stream = StreamRecorder(server, "/__beacon/events?channel=secret.plans",
                                headers={"Authorization": f"Bearer {token}"})
        try:
            stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "the hello")
            samples = wait_for(server, lambda s: s.get(("beacon_streams_open", '{channel="other"}'), 0) == 1,
                               "the private stream counted under other")
            assert not any("secret" in labels for _, labels in samples), samples
        finally:
            stream.close()


def test_redis_round_trips_are_timed(tmp_path, redis_url):
    with beacon_server(tmp_path, extra_args=["--redis", redis_url]) as server:
        publish(server, "r", "through redis")
        samples = wait_for(server, lambda s: s[("beacon_redis_roundtrip_seconds_count", "")] >= 1, "a round trip")
        assert samples[("beacon_redis_errors_total", "")] == 0


def test_metrics_address_serves_metrics_and_health_alone(tmp_path):
    from conftest import _free_port
    port = _free_port()
    with beacon_server(tmp_path, extra_args=["--metrics-address", f"127.0.0.1:{port}"]) as server:
        def admin(path, method="GET", headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            connection.close()
            return response, body

        deadline = time.monotonic() + WAIT
        while True:
            try:
                response, body = admin("/__beacon/metrics")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status == 200 and b"beacon_http_responses_total" in body
        assert admin("/__beacon/health/live")[0].status == 200
        assert admin("/__beacon/health/ready")[0].status == 200
        # Nothing else is served there, and the one guard applies.
        assert admin("/")[0].status == 404
        assert admin("/__beacon/events")[0].status == 404
        assert admin("/__beacon/metrics", headers={"Host": "evil.example"})[0].status == 403
        assert admin("/__beacon/metrics", headers={"Sec-Fetch-Site": "cross-site"})[0].status == 403
        # The main address still has them too.
        assert get(server, "/__beacon/metrics")[0].status == 200


def test_bad_metrics_address_is_one_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    result = subprocess.run([str(_beacon_bin()), "serve", str(site), "--metrics-address", "nonsense"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "--metrics-address must be HOST:PORT" in result.stderr and len(result.stderr.strip().splitlines()) == 1
