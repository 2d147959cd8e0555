"""`--redis rediss://…`: TLS to Redis, against Debian's redis-server started with `--tls-port` and
certificates made here with openssl — two instances share events over it; an untrusted
certificate, a name mismatch and a plain port are one line each at start."""
import socket
import subprocess
import time

import pytest

from conftest import STOP_TIMEOUT, _beacon_bin, _free_port, beacon_server
from helpers import StreamRecorder

TOOL_TIMEOUT = 30


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TOOL_TIMEOUT)


@pytest.fixture
def certificates(tmp_path):
    """A CA, a certificate for localhost/127.0.0.1 it signed, and a self-signed one for other.test."""
    d = tmp_path / "certs"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "30", "-subj", "/CN=Test Redis CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "redis.key",
            "-out", "redis.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "redis.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "redis.pem", "-days", "30", "-extfile", "ext", cwd=d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "other.key", "-out", "other.pem", "-days", "30", "-subj", "/CN=other",
            "-addext", "subjectAltName=DNS:other.test", cwd=d)
    return d


def start_redis(tmp_path, certificate, key, ca):
    """redis-server with a plain port and a TLS port, both free; returns (process, plain, tls)."""
    plain, tls = _free_port(), _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(plain), "--tls-port", str(tls), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certificate), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
         "--loglevel", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", plain), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("redis-server with --tls-port did not start (is it built with TLS?)")
        time.sleep(0.02)
    return process, plain, tls


@pytest.fixture
def tls_redis(tmp_path, certificates):
    process, plain, tls = start_redis(tmp_path, certificates / "redis.pem", certificates / "redis.key",
                                      certificates / "ca.pem")
    try:
        yield plain, tls
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def publish(server, channel, data):
    result = subprocess.run([str(_beacon_bin()), "publish", "--url", server.base_url, "--channel", channel, data],
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert result.returncode == 0, result.stderr


def test_two_instances_share_events_over_tls(tmp_path, certificates, tls_redis):
    _, tls = tls_redis
    args = ["--redis", f"rediss://127.0.0.1:{tls}", "--redis-ca", str(certificates / "ca.pem")]
    with beacon_server(tmp_path, "a", args) as a, \
            beacon_server(tmp_path, "b", ["--redis", f"rediss://localhost:{tls}",
                                          "--redis-ca", str(certificates / "ca.pem")]) as b:
        assert "rediss://127.0.0.1" in a.log()
        stream = StreamRecorder(b, "/__beacon/events?channel=tls")
        try:
            stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "the hello")
            publish(a, "tls", "over TLS")
            stream.wait_for(lambda events: any(data == "over TLS" for _, _, data in events),
                            "the event published on the other instance")
        finally:
            stream.close()


def start_error(tmp_path, *args):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    result = subprocess.run([str(_beacon_bin()), "serve", str(site), "--port", "0", *args],
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, f"{args}: exit {result.returncode}, {result.stderr}"
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_tls_start_up_errors_name_the_problem(tmp_path, certificates, tls_redis):
    plain, tls = tls_redis
    untrusted = start_error(tmp_path, "--redis", f"rediss://127.0.0.1:{tls}")
    assert "not trusted" in untrusted and "--redis-ca" in untrusted
    plain_port = start_error(tmp_path, "--redis", f"rediss://127.0.0.1:{plain}", "--redis-ca",
                             str(certificates / "ca.pem"))
    assert "did not finish" in plain_port and "--tls-port" in plain_port
    ca_without_tls = start_error(tmp_path, "--redis", f"redis://127.0.0.1:{plain}", "--redis-ca",
                                 str(certificates / "ca.pem"))
    assert "rediss://" in ca_without_tls
    not_pem = start_error(tmp_path, "--redis", f"rediss://127.0.0.1:{tls}", "--redis-ca",
                          str(certificates / "ext"))
    assert "PEM" in not_pem


def test_a_certificate_for_another_name_is_refused(tmp_path, certificates):
    process, _, tls = start_redis(tmp_path, certificates / "other.pem", certificates / "other.key",
                                  certificates / "other.pem")
    try:
        mismatch = start_error(tmp_path, "--redis", f"rediss://127.0.0.1:{tls}", "--redis-ca",
                               str(certificates / "other.pem"))
        assert "does not name 127.0.0.1" in mismatch
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
