"""The installed Beacon as a user gets it (`make install`, the .deb): it must run where no Swift
toolchain is. Each test hides the toolchain's folder behind an empty tmpfs in a private mount
namespace (`unshare -m`, as root), then starts the installed binary there: it must start, serve a
page with the live client, take a publish and push it down an event stream. `ldd` must list
nothing from the toolchain. Everything talks to 127.0.0.1 only and every wait is bounded.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

PREFIX = Path(os.environ.get("BEACON_INSTALLED", "/usr/local"))
BINARY = PREFIX / "bin" / "beacon"
WAIT = 20.0


def toolchain_folder() -> Path:
    """The folder the Swift toolchain lives in (/opt/swift here): `swift`'s real path, up from usr/bin."""
    swift = shutil.which("swift")
    if swift is None:
        pytest.skip("no swift on PATH: nothing to hide")
    path = Path(os.path.realpath(swift)).parent  # …/usr/bin
    return path.parent.parent if path.parent.name == "usr" else path.parent


def hidden(command: list) -> list:
    """`command`, run with the toolchain's folder covered by an empty tmpfs."""
    folder = toolchain_folder()
    script = f'mount -t tmpfs none "{folder}" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *command]


@pytest.fixture(scope="module", autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("hiding the toolchain needs a private mount namespace (root)")
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is not installed (make test-dist installs it)")


def test_ldd_lists_nothing_from_the_toolchain():
    out = subprocess.run(["ldd", str(BINARY)], capture_output=True, text=True, timeout=30).stdout
    folder = str(toolchain_folder())
    assert folder not in out, out
    assert "libswift" not in out and "libFoundation" not in out, out
    # What it does need: the C library and libinotifytools, which the .deb depends on.
    assert "libinotifytools" in out, out


def test_the_toolchain_is_really_hidden():
    swift_core = toolchain_folder() / "usr" / "lib" / "swift" / "linux" / "libswiftCore.so"
    seen = subprocess.run(hidden(["ls", str(swift_core)]), capture_output=True, text=True, timeout=30)
    assert seen.returncode != 0, "the toolchain is still visible: this test would prove nothing"


def test_version_man_page_and_completions_are_installed():
    version = subprocess.run(hidden([str(BINARY), "--version"]), capture_output=True, text=True, timeout=30)
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", version.stdout), version.stdout
    man = (PREFIX / "share" / "man" / "man1" / "beacon.1").read_text()
    assert ".Dt BEACON 1" in man and ".It Em serve" in man and ".It Em publish" in man  # mdoc, every subcommand
    assert "beacon" in (PREFIX / "share" / "bash-completion" / "completions" / "beacon").read_text()
    assert "#compdef beacon" in (PREFIX / "share" / "zsh" / "vendor-completions" / "_beacon").read_text()
    assert "complete -c 'beacon'" in (PREFIX / "share" / "fish" / "vendor_completions.d" / "beacon.fish").read_text()


def request(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_init_serve_and_push_without_the_toolchain(tmp_path):
    site = tmp_path / "site"
    made = subprocess.run(hidden([str(BINARY), "init", str(site)]), capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    assert (site / "index.html").exists()

    server = subprocess.Popen(
        hidden([str(BINARY), "serve", str(site), "--port", "0"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        port = None
        while port is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            found = re.search(r"^Serving .* at http://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else None
        assert port, f"no Serving line; stderr: {server.stderr.read() if server.poll() is not None else ''}"

        page = request(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert page.startswith(b"HTTP/1.1 200 OK\r\n"), page[:300]
        assert b'<script src="/__beacon/client.js"></script>' in page

        with socket.create_connection(("127.0.0.1", port), timeout=10) as stream:
            stream.sendall(b"GET /__beacon/events?channel=dist HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while b"event: hello" not in received and time.monotonic() < deadline:
                received += stream.recv(65536)
            assert b"200 OK" in received, received[:300]
            # `beacon publish`, also from the installed binary without the toolchain.
            published = subprocess.run(
                hidden([str(BINARY), "publish", "--url", f"http://127.0.0.1:{port}", "--channel", "dist", "from the .deb"]),
                capture_output=True, text=True, timeout=30)
            assert published.returncode == 0, published.stderr
            while b"from the .deb" not in received and time.monotonic() < deadline:
                chunk = stream.recv(65536)
                if not chunk:
                    break
                received += chunk
            assert b"data: from the .deb" in received, received[-300:]
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
