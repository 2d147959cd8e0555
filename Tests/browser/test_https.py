"""`beacon serve --https`: the local CA, HTTP/2 by ALPN beside HTTP/1.1, and every feature over
both — checked from outside with the tools people use (curl, nghttp, h2load, openssl, certutil)
and a real Chromium that trusts the CA through an NSS database, as `beacon trust --install` sets
it up (never `--ignore-certificate-errors`).
"""
import datetime
import json
import os
import signal
import re
import socket
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from conftest import _beacon_bin, _start_chromium, beacon_server, flask_server
from helpers import CONNECTED_JS, wait_until, write_in_place
from proxy_app.websocket_echo import echo_app, frame, open_websocket

TOOL_TIMEOUT = 60  # seconds any one tool run may take
HEAD_TIMEOUT = 10  # the server's bound for a request head, and for a TLS handshake
SCRIPT = '<script src="/__beacon/client.js"></script>'
# Fields HTTP/2 forbids in answers (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")


def tls_env(home):
    """The environment of a server (or browser) whose HOME is `home`: the CA is kept under it."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    return env


def ca_folder(home):
    return home / ".local" / "share" / "beacon"


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def https_server(tmp_path, home):
    with beacon_server(tmp_path, extra_args=["--https", "--allow-host", "dev.beacon.test"], env=tls_env(home)) as s:
        yield s


def curl(*args, check=True):
    result = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "20", *args],
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if check:
        assert result.returncode == 0, f"curl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
    return result


def test_serving_line_names_https_and_curl_negotiates_h2(https_server, home):
    assert https_server.base_url.startswith("https://127.0.0.1:")
    ca = str(ca_folder(home) / "ca.pem")
    result = curl("--http2", "--cacert", ca, "-w", "\n%{http_version}", https_server.url("/"))
    body, version = result.stdout.rsplit("\n", 1)
    assert version == "2", f"curl --http2 negotiated HTTP/{version}"
    assert body.count(SCRIPT) == 1, body
    # HTTP/1.1 on the same port, for clients without ALPN's h2.
    result = curl("--http1.1", "--cacert", ca, "-i", https_server.url("/"))
    assert result.stdout.startswith("HTTP/1.1 200"), result.stdout[:200]
    assert result.stdout.count(SCRIPT) == 1


def test_plain_http_to_the_https_port_is_told_the_https_url(https_server):
    port = int(https_server.base_url.rsplit(":", 1)[1].strip("/"))
    result = curl("-i", f"http://127.0.0.1:{port}/about.html?x=1", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 400"), result.stdout
    assert f"https://127.0.0.1:{port}/about.html?x=1" in result.stdout


def test_local_ca_and_server_certificate(https_server, home, tmp_path):
    folder = ca_folder(home)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for key in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600, f"{key} is readable by others"
    text = subprocess.run(["openssl", "x509", "-in", str(folder / "server.pem"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "CA:FALSE" in text
    assert "TLS Web Server Authentication" in text
    assert "Digital Signature" in text
    assert "ecdsa-with-SHA256" in text and "prime256v1" in text, "P-256 keys expected"
    sans = re.search(r"Subject Alternative Name:.*?\n\s*(.+)\n", text).group(1)
    for name in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "DNS:dev.beacon.test"):
        assert name in sans, f"{name} missing from {sans}"
    dates = subprocess.run(["openssl", "x509", "-in", str(folder / "server.pem"), "-noout", "-startdate",
                            "-enddate"], capture_output=True, text=True, check=True).stdout
    parse = lambda key: datetime.datetime.strptime(  # noqa: E731
        re.search(key + r"=(.+)", dates).group(1).strip(), "%b %d %H:%M:%S %Y %Z")
    assert (parse("notAfter") - parse("notBefore")).days <= 825
    ca_text = subprocess.run(["openssl", "x509", "-in", str(folder / "ca.pem"), "-noout", "-text"],
                             capture_output=True, text=True, check=True).stdout
    assert re.search(r"CA:TRUE", ca_text) and "Certificate Sign" in ca_text
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(folder / "ca.pem"), "-purpose", "sslserver",
                             str(folder / "server.pem")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_ca_is_reused_and_a_new_name_gets_a_new_certificate_from_it(tmp_path, home):
    folder = ca_folder(home)
    with beacon_server(tmp_path, name="one", extra_args=["--https"], env=tls_env(home)):
        ca, leaf = (folder / "ca.pem").read_bytes(), (folder / "server.pem").read_bytes()
    with beacon_server(tmp_path, name="two", extra_args=["--https"], env=tls_env(home)):
        assert (folder / "ca.pem").read_bytes() == ca, "the CA was made again"
        assert (folder / "server.pem").read_bytes() == leaf, "the server certificate was issued again for no reason"
    with beacon_server(tmp_path, name="three", extra_args=["--https", "--allow-host", "new.beacon.test"],
                       env=tls_env(home)) as s:
        assert (folder / "ca.pem").read_bytes() == ca
        assert (folder / "server.pem").read_bytes() != leaf
        port = s.base_url.rsplit(":", 1)[1].strip("/")
        result = curl("--cacert", str(folder / "ca.pem"), "--resolve", f"new.beacon.test:{port}:127.0.0.1",
                      "-o", "/dev/null", "-w", "%{http_code}", f"https://new.beacon.test:{port}/")
        assert result.stdout == "200"


def run_nghttp(url, *args, timeout_s=None):
    command = ["nghttp", "-v", "-n", "--no-verify-peer", *args]
    if timeout_s:
        command += ["-t", str(timeout_s)]
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    return result.stdout + result.stderr


def received_headers(output):
    return [line.split(")", 1)[1].strip() for line in output.splitlines()
            if re.match(r"\s*\[\s*[\d.]+\] recv \(stream_id=\d+\) ", line)]


def check_clean(output, what):
    assert "PROTOCOL_ERROR" not in output, f"{what}: protocol error\n{output}"
    assert "recv RST_STREAM" not in output, f"{what}: stream reset\n{output}"
    assert not re.search(r"recv GOAWAY frame.*\n.*error_code=(?!NO_ERROR)", output), f"{what}: GOAWAY\n{output}"
    for header in received_headers(output):
        name = header.split(":", 2)[1] if header.startswith(":") else header.split(":", 1)[0]
        assert name.strip().lower() not in CONNECTION_SPECIFIC, f"{what}: HTTP/2 answer carries {header}"


def test_every_kind_of_answer_over_http2_without_protocol_errors(https_server, tmp_path):
    base = https_server.base_url
    page = run_nghttp(base)
    check_clean(page, "page")
    assert ":status: 200" in page
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):" in page
    streams = int(re.search(r"SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):(\d+)", page).group(1))
    assert streams >= 100
    etag = re.search(r"recv \(stream_id=\d+\) etag: (.+)", page).group(1).strip()
    cases = [
        ("style.css", [], ":status: 200"),
        ("", ["-H", f"if-none-match: {etag}"], ":status: 304"),
        ("style.css", ["-H", "range: bytes=0-9"], ":status: 206"),
        ("nothing-here.html", [], ":status: 404"),
        ("__beacon/client.js", [], ":status: 200"),
        ("__beacon/status", [], ":status: 200"),
        # The guard over HTTP/2: another site's page may not read the status; tokens stay out of URLs.
        ("__beacon/status", ["-H", "sec-fetch-site: cross-site"], ":status: 403"),
        ("__beacon/events?access_token=x", [], ":status: 400"),
    ]
    for path, extra, status in cases:
        output = run_nghttp(base + path, *extra)
        check_clean(output, path)
        assert status in output, f"{path} {extra}: expected {status}\n{output}"
    body = tmp_path / "event.json"
    body.write_text('{"channel":"news","data":"over h2"}')
    output = run_nghttp(base + "__beacon/publish", "-d", str(body), "-H", "content-type: application/json")
    check_clean(output, "publish")
    assert ":status: 202" in output, output


def test_event_stream_over_http2_with_replay(https_server, tmp_path):
    base = https_server.base_url
    for n in range(3):
        curl("-k", "--http2", "-X", "POST", "-H", "Content-Type: application/json",
             "--data", f'{{"channel":"news","data":"event {n}"}}', base + "__beacon/publish")
    # Replay from the start on a fresh stream, then live events, with heartbeats, on one connection.
    output = run_nghttp(base + "__beacon/events?channel=news", "-H", "last-event-id: 0-0", timeout_s=2)
    assert ":status: 200" in output and "content-type: text/event-stream" in output, output
    check_clean(output.replace("Timeout", ""), "event stream")

    reader = subprocess.Popen(["curl", "-sN", "-k", "--http2", "--noproxy", "*", "--max-time", "15",
                               base + "__beacon/events?channel=live"], stdout=subprocess.PIPE, text=True)
    try:
        got = []
        def read():
            for line in reader.stdout:
                got.append(line)
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not any(line.startswith("event: hello") for line in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        curl("-k", "--http2", "-X", "POST", "-H", "Content-Type: application/json",
             "--data", '{"channel":"live","data":"pushed over h2"}', base + "__beacon/publish")
        while not any("pushed over h2" in line for line in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("pushed over h2" in line for line in got), "".join(got)
    finally:
        reader.kill()
        reader.wait(timeout=5)


def test_many_event_streams_share_one_http2_connection(https_server):
    # nghttp multiplexes every URI on one connection: 40 streams, each says hello.
    urls = [https_server.url(f"/__beacon/events?channel=c{n}") for n in range(40)]
    result = subprocess.run(["nghttp", "-n", "-v", "--no-verify-peer", "-t", "3", *urls], capture_output=True,
                            text=True, timeout=TOOL_TIMEOUT)
    output = result.stdout + result.stderr
    assert output.count("Connected") == 1, "more than one connection"
    assert output.count(":status: 200") == 40, output[-2000:]
    assert output.count("content-type: text/event-stream") == 40
    check_clean(output, "forty streams")


def test_h2load_loads_500_assets_20_times_without_an_error(https_server, tmp_path):
    assets = https_server.site_dir / "assets"
    assets.mkdir()
    for n in range(500):
        (assets / f"a{n}.css").write_text(f".a{n} {{ color: red; }}\n")
    uris = tmp_path / "uris.txt"
    uris.write_text("".join(f"{https_server.base_url}assets/a{n}.css\n" for n in range(500)))
    result = subprocess.run(["h2load", "-n", "10000", "-c", "4", "-m", "100", "-i", str(uris)],
                            capture_output=True, text=True, timeout=180)
    out = result.stdout + result.stderr
    assert "h2" in re.search(r"Application protocol: (\S+)", out).group(1), out
    assert re.search(r"requests: 10000 total, 10000 started, 10000 done, 10000 succeeded, 0 failed, 0 errored", out), out
    assert re.search(r"status codes: 10000 2xx", out), out


def test_host_allowlist_applies_over_https(https_server):
    port = https_server.base_url.rsplit(":", 1)[1].strip("/")
    for version in ("--http2", "--http1.1"):
        result = curl(version, "-k", "--resolve", f"evil.example:{port}:127.0.0.1", "-o", "/dev/null",
                      "-w", "%{http_code}", f"https://evil.example:{port}/")
        assert result.stdout == "403", f"{version}: a foreign Host got {result.stdout}"
        # A name the certificate carries is still not a host the allowlist lacks... but this one it has.
        result = curl(version, "-k", "--resolve", f"dev.beacon.test:{port}:127.0.0.1", "-o", "/dev/null",
                      "-w", "%{http_code}", f"https://dev.beacon.test:{port}/")
        assert result.stdout == "200"


def test_only_tls_1_2_and_1_3(https_server):
    port = https_server.base_url.rsplit(":", 1)[1].strip("/")

    def handshake(version):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = version
        context.maximum_version = version
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as raw:
                with context.wrap_socket(raw) as tls:
                    return tls.version()
        except (ssl.SSLError, OSError):
            return None

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    # (OpenSSL 3 may refuse TLS 1.1 itself; either way no handshake completes.)
    assert handshake(ssl.TLSVersion.TLSv1_1) is None


def test_bad_tls_input_is_dropped_and_others_are_served(https_server, home):
    port = int(https_server.base_url.rsplit(":", 1)[1].strip("/"))
    # A real ClientHello's first bytes, then nothing: a handshake that stops halfway.
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    cases = {
        "half a ClientHello": hello[: len(hello) // 2],
        "garbage": bytes(range(200)),
        "nothing at all": b"",
    }
    results = {}

    def attack(name, payload):
        with socket.create_connection(("127.0.0.1", port), timeout=HEAD_TIMEOUT + 10) as s:
            start = time.monotonic()
            if payload:
                s.sendall(payload)
            try:
                while s.recv(4096):
                    pass
                results[name] = time.monotonic() - start
            except OSError:
                results[name] = time.monotonic() - start

    threads = [threading.Thread(target=attack, args=item, daemon=True) for item in cases.items()]
    for thread in threads:
        thread.start()
    # Served meanwhile.
    ca = str(ca_folder(home) / "ca.pem")
    assert curl("--http2", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", https_server.url("/")).stdout == "200"
    for thread in threads:
        thread.join(timeout=HEAD_TIMEOUT + 15)
    for name in cases:
        assert name in results, f"{name}: the connection was still open after {HEAD_TIMEOUT + 15} s"
        assert results[name] <= HEAD_TIMEOUT + 5, f"{name}: closed only after {results[name]:.1f} s"
    assert results["garbage"] < HEAD_TIMEOUT, "garbage should be dropped at once, not after the timeout"
    assert https_server.process.poll() is None
    assert curl("--http1.1", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", https_server.url("/")).stdout == "200"


def beacon(*args, env, check=False):
    return subprocess.run([str(_beacon_bin()), *args], capture_output=True, text=True, env=env, timeout=TOOL_TIMEOUT)


def test_trust_prints_installs_and_uninstalls_in_nss(tmp_path, home):
    env = tls_env(home)
    shown = beacon("trust", env=env)
    assert shown.returncode == 0, shown.stderr
    assert str(ca_folder(home) / "ca.pem") in shown.stdout
    assert "update-ca-certificates" in shown.stdout and "certutil" in shown.stdout
    installed = beacon("trust", "--install", "--store", "nss", env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = subprocess.run(["certutil", "-d", f"sql:{home}/.pki/nssdb", "-L"], capture_output=True, text=True)
    assert "Beacon local CA" in listed.stdout, listed.stdout
    removed = beacon("trust", "--uninstall", "--store", "nss", env=env)
    assert removed.returncode == 0, removed.stderr
    listed = subprocess.run(["certutil", "-d", f"sql:{home}/.pki/nssdb", "-L"], capture_output=True, text=True)
    assert "Beacon local CA" not in listed.stdout


def make_pair(tmp_path, name, days_before, days_after, key=None):
    """A self-signed certificate for localhost valid from now-days_before to now+days_after."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=days_before))
            .not_valid_after(now + datetime.timedelta(days=days_after))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_own_certificate_is_served(tmp_path):
    cert, key = make_pair(tmp_path, "mine", 1, 30)
    with beacon_server(tmp_path, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]) as s:
        port = s.base_url.rsplit(":", 1)[1].strip("/")
        result = curl("--http2", "--cacert", str(cert), "--resolve", f"localhost:{port}:127.0.0.1",
                      "-w", "\n%{http_version}", f"https://localhost:{port}/")
        assert result.stdout.endswith("\n2") and SCRIPT in result.stdout


def test_start_up_errors_are_one_line(tmp_path, home):
    env = tls_env(home)
    site = tmp_path / "site"
    site.mkdir()
    good_cert, good_key = make_pair(tmp_path, "good", 1, 30)
    _, other_key = make_pair(tmp_path, "other", 1, 30)
    expired_cert, expired_key = make_pair(tmp_path, "expired", 30, -1)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    cases = [
        (["--tls-cert", str(good_cert)], env, "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(good_cert), "--tls-key", str(other_key)], env, "does not belong to the certificate"),
        (["--tls-cert", str(expired_cert), "--tls-key", str(expired_key)], env, "expired"),
        (["--tls-cert", str(not_pem), "--tls-key", str(good_key)], env, "no PEM certificate"),
        (["--tls-cert", str(good_cert), "--tls-key", str(not_pem)], env, "not a PEM private key"),
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(good_key)], env, "No such file"),
        (["--https"], {**env, "XDG_DATA_HOME": str(blocker / "data")}, "cannot make the folder"),
    ]
    for args, case_env, message in cases:
        result = beacon("serve", str(site), "--port", "0", *args, env=case_env)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0, f"{args}: started anyway"
        assert len(lines) == 1 and message in lines[0], f"{args}: {result.stderr!r}"
        assert "PRIVATE KEY-----" not in result.stderr, "a key's text was printed"


def test_beacon_publish_trusts_the_local_ca(https_server, home):
    reader = subprocess.Popen(["curl", "-sN", "-k", "--http2", "--noproxy", "*", "--max-time", "15",
                               https_server.url("/__beacon/events?channel=cli")], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().startswith("retry:")
        published = beacon("publish", "--url", https_server.base_url, "--channel", "cli", "from the CLI",
                           env=tls_env(home))
        assert published.returncode == 0, published.stderr
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            line = reader.stdout.readline()
            lines.append(line)
            if "from the CLI" in line or not line:
                break
        assert any("from the CLI" in line for line in lines), lines
    finally:
        reader.kill()
        reader.wait(timeout=5)


PROXY_APP = Path(__file__).parent / "proxy_app"


def test_an_event_stream_over_http1_is_encrypted_too(https_server, home):
    """A client that speaks HTTP/1.1 over TLS (no h2: a script, or a proxy in between) gets its
    stream's events encrypted like its head; they once went out in the clear and curl gave up."""
    ca = str(ca_folder(home) / "ca.pem")
    reader = subprocess.Popen(["curl", "-sSN", "--http1.1", "--cacert", ca, "--noproxy", "*", "--max-time", "15",
                               https_server.url("/__beacon/events?channel=h1")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().startswith("retry:")
        published = beacon("publish", "--url", https_server.base_url, "--channel", "h1", "over HTTP/1.1",
                           env=tls_env(home))
        assert published.returncode == 0, published.stderr
        lines = []
        while True:  # bounded by curl's --max-time
            line = reader.stdout.readline()
            lines.append(line)
            if "over HTTP/1.1" in line or not line:
                break
        assert any("data: over HTTP/1.1" in line for line in lines), (lines, reader.stderr.read() if not line else "")
    finally:
        reader.kill()
        reader.wait(timeout=5)


def test_a_websocket_tunnel_over_tls_carries_messages_both_ways(tmp_path, home):
    """With --https --proxy, a WebSocket to the app (always HTTP/1.1) is tunnelled behind TLS:
    the tunnel once sat in front of the encryption, passing ciphertext to the app."""
    with echo_app() as app:
        with beacon_server(tmp_path, extra_args=["--https", "--proxy", f"http://127.0.0.1:{app.port}"],
                           site_dir=False, env=tls_env(home)) as s:
            port = int(s.base_url.rstrip("/").rsplit(":", 1)[1])
            tls = ssl.create_default_context(cafile=str(ca_folder(home) / "ca.pem"))
            tls.set_alpn_protocols(["http/1.1"])
            sock, line, _, frames = open_websocket(
                port, wrap=lambda raw: tls.wrap_socket(raw, server_hostname="127.0.0.1"))
            with sock:
                assert line.startswith("HTTP/1.1 101"), line
                assert frames.next() == (1, b"welcome")
                messages = [(1, f"message {i}".encode()) for i in range(10)] + [(2, bytes(range(256)) * 256)]
                for opcode, payload in messages:
                    sock.sendall(frame(opcode, payload, mask=True))
                for sent in messages:
                    assert frames.next() == sent
            request_line, _ = app.upgrades[-1]
            assert request_line == "GET /ws HTTP/1.1"


def test_http2_connections_count_against_max_connections(tmp_path, home):
    """--max-connections counts HTTP/2 connections as it counts HTTP/1 ones: past it, every stream
    of a new connection gets 503 with the reason, and a slot freed is taken again."""
    with beacon_server(tmp_path, extra_args=["--https", "--max-connections", "1"], env=tls_env(home)) as s:
        ca = str(ca_folder(home) / "ca.pem")
        holder = subprocess.Popen(["curl", "-sSN", "--http2", "--cacert", ca, "--noproxy", "*", "--max-time", "20",
                                   s.url("/__beacon/events")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().startswith("retry:")
            refused = curl("--http2", "--cacert", ca, "-w", "\n%{http_code} %{http_version}", s.url("/"), check=False)
            assert refused.stdout.endswith("\n503 2"), refused.stdout
            assert "connection limit (--max-connections)" in refused.stdout
        finally:
            holder.kill()
            holder.wait(timeout=5)
        # The held connection's slot comes back once it closes.
        deadline = time.monotonic() + 10
        while True:
            code = curl("--http2", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", s.url("/"), check=False)
            if code.stdout == "200":
                break
            assert time.monotonic() < deadline, f"still refused after the held connection closed: {code.stdout}"
            time.sleep(0.05)


def test_proxy_over_https_and_http2(tmp_path, home):
    with flask_server(PROXY_APP, app="upstream") as (upstream, _):
        with beacon_server(tmp_path, extra_args=["--https", "--proxy", f"http://127.0.0.1:{upstream}"],
                           site_dir=False, env=tls_env(home)) as s:
            ca = str(ca_folder(home) / "ca.pem")
            base = s.base_url.rstrip("/")
            page = curl("--http2", "--cacert", ca, "-w", "\n%{http_version}", base + "/")
            assert page.stdout.endswith("\n2") and page.stdout.count(SCRIPT) == 1, page.stdout
            gz = curl("--http2", "--cacert", ca, base + "/compressed/gzip")
            assert gz.stdout.count(SCRIPT) == 1
            # The app learns it is served over https; a redirect to its own origin comes back as Beacon's.
            answer = curl("--http2", "--cacert", ca, "-D", "-", "-o", "/dev/null",
                          f"{base}/redirect?to=127.0.0.1:{upstream}")
            location = re.search(r"(?im)^location: (\S+)", answer.stdout).group(1)
            assert location == f"{base}/landing?x=1", answer.stdout
            assert not re.search(r"(?im)^(connection|keep-alive|transfer-encoding):", answer.stdout), answer.stdout
            seen = json.loads(curl("--http2", "--cacert", ca, base + "/seen").stdout)["seen"]
            forwarded = [r["headers"].get("x-forwarded-proto") for r in seen if r["path"].startswith("/redirect")]
            assert forwarded == ["https"], seen
            echoed = curl("--http2", "--cacert", ca, "-X", "POST", "--data-binary", "x" * 100000,
                          "-H", "Content-Type: application/octet-stream", base + "/echo")
            assert json.loads(echoed.stdout)["length"] == 100000
            # The app's own event stream streams through HTTP/2.
            events = curl("--http2", "--cacert", ca, "-N", base + "/events?count=3")
            assert events.stdout.count("data: ") == 3, events.stdout


# --- a real browser, trusting the CA through its NSS database -----------------------------------------

@pytest.fixture
def trusted_browser(home):
    installed = beacon("trust", "--install", "--store", "nss", env=tls_env(home))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    browser = _start_chromium(env=tls_env(home))
    try:
        yield browser
    finally:
        browser.quit()


def test_chromium_over_https_h2_swaps_css_patches_html_and_twelve_tabs_stay_live(https_server, trusted_browser):
    driver = trusted_browser
    server = https_server
    driver.get(server.url("/"))
    wait_until(driver, server, CONNECTED_JS, "the live client is connected over https")
    protocol = driver.execute_script("return performance.getEntries()[0].nextHopProtocol;")
    assert protocol == "h2", f"the page loaded over {protocol}, not HTTP/2"
    driver.execute_script("window.marker = 42;")

    style = server.site_dir / "style.css"
    write_in_place(style, style.read_text(encoding="utf-8") + "\nbody { background-color: rgb(1, 2, 3); }\n")
    wait_until(driver, server, "return getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)';",
               "the stylesheet swapped over https")
    assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of swapping CSS"

    # Twelve tabs on one origin: every one stays live and gets the next patch in place.
    first = driver.current_window_handle
    for _ in range(11):
        driver.switch_to.new_window("tab")
        driver.get(server.url("/"))
        wait_until(driver, server, CONNECTED_JS, "another tab's live client is connected")
        driver.execute_script("window.marker = 42;")
    handles = driver.window_handles
    assert len(handles) == 12
    index = server.site_dir / "index.html"
    html = index.read_text(encoding="utf-8")
    write_in_place(index, html.replace("<h1>Hello from Beacon</h1>", "<h1>Patched over HTTPS</h1>"))
    for handle in handles:
        driver.switch_to.window(handle)
        wait_until(driver, server, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Patched over HTTPS",
                   "every tab shows the patched <h1>")
        assert driver.execute_script("return window.marker;") == 42, "a tab reloaded instead of patching"
    driver.switch_to.window(first)


def test_sigterm_ends_http2_streams_with_retry_and_exits(tmp_path, home):
    with beacon_server(tmp_path, extra_args=["--https"], env=tls_env(home)) as server:
        reader = subprocess.Popen(["curl", "-skN", "--http2", "--noproxy", "*", "--max-time", "20",
                                   server.url("/__beacon/events")], stdout=subprocess.PIPE, text=True)
        try:
            assert reader.stdout.readline().startswith("retry:")
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=10) == 0
            rest = reader.stdout.read()
            assert reader.wait(timeout=10) == 0, "the HTTP/2 stream did not end cleanly"
            assert "retry: 250" in rest, rest
            assert time.monotonic() - started < 6
        finally:
            reader.kill()
            reader.wait(timeout=5)
