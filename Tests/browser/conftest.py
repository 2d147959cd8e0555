"""Fixtures for Beacon's headless-Chromium live-reload tests.

`server` runs `beacon serve <copy of site-template> --port 0` and yields its base URL and the
site copy; `driver` is a headless Chromium (`second_driver` another one, for two-browser
tests). Every wait here is bounded.
"""

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_TEMPLATE = REPO_ROOT / "site-template"
DEFAULT_BEACON_BIN = REPO_ROOT / ".build" / "debug" / "beacon"

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

START_TIMEOUT = 30.0  # seconds for `beacon serve` to print its "Serving" line
STOP_TIMEOUT = 5.0  # seconds for beacon to exit after SIGTERM before it is killed
PAGE_LOAD_TIMEOUT = 15.0  # seconds for driver.get()

SERVING_LINE = re.compile(r"^Serving (?P<dir>.+) at (?P<url>https?://127\.0\.0\.1:(?P<port>\d+)/)\s*$")


@dataclass
class BeaconServer:
    base_url: str  # e.g. "http://127.0.0.1:41234/", always ends in "/"
    site_dir: Path  # the served copy of site-template; tests edit files here
    process: subprocess.Popen
    stderr_path: Path
    stdout_lines: list

    def url(self, path: str = "") -> str:
        return self.base_url + path.lstrip("/")

    def log(self) -> str:
        """Everything the server wrote so far (stdout lines, then its stderr log)."""
        try:
            err = self.stderr_path.read_text(errors="replace")
        except OSError:
            err = ""
        out = "".join(self.stdout_lines)
        return f"--- beacon stdout ---\n{out}--- beacon stderr ---\n{err}"


def _beacon_bin() -> Path:
    return Path(os.environ.get("BEACON_BIN", str(DEFAULT_BEACON_BIN))).resolve()


def _pump(stream, lines: list, q: queue.Queue) -> None:
    """Reads the server's stdout for its whole life, so the pipe never fills up."""
    for line in iter(stream.readline, ""):
        lines.append(line)
        q.put(line)
    q.put(None)  # EOF: the process closed stdout (usually: it exited)


@contextlib.contextmanager
def beacon_server(tmp_path, name: str = "site", extra_args=(), site_dir: bool = True, cwd=None, port: int = 0,
                  env=None):
    """Runs `beacon serve <fresh copy of site-template> --port 0 EXTRA_ARGS` until the block ends;
    with `site_dir=False`, `beacon serve --port 0 EXTRA_ARGS` in `cwd` (a proxy without a directory);
    `env` replaces the environment (HOME for the local CA of `--https`, say)."""
    binary = _beacon_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"beacon binary not found or not executable: {binary} (set BEACON_BIN)")

    site = tmp_path / name
    if site_dir:
        # symlinks=False: copy the template's files, so edits never reach the repository.
        shutil.copytree(SITE_TEMPLATE, site, symlinks=False)
    stderr_path = tmp_path / f"beacon-{name}.stderr.log"

    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(
            [str(binary), "serve", *([str(site)] if site_dir else []), "--port", str(port), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            bufsize=1,
            cwd=cwd or tmp_path,
            env=env,
        )
    lines: list = []
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines, q), daemon=True).start()

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
                warnings.warn(f"beacon did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM; killed it")

    def startup_failure(reason: str) -> str:
        stop()
        return (
            f"beacon serve {reason} (exit status {process.returncode}).\n"
            f"stdout:\n{''.join(lines)}\nstderr:\n{stderr_path.read_text(errors='replace')}"
        )

    base_url = None
    deadline = time.monotonic() + START_TIMEOUT
    while base_url is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(startup_failure(f"printed no 'Serving ... at http://127.0.0.1:<port>/' line within {START_TIMEOUT:.0f} s"))
        try:
            line = q.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            if process.poll() is not None:
                pytest.fail(startup_failure("exited before it was serving"))
            continue
        if line is None:
            process.wait(timeout=STOP_TIMEOUT)
            pytest.fail(startup_failure("closed stdout before it was serving"))
        match = SERVING_LINE.match(line)
        if match:
            base_url = match.group("url")

    try:
        yield BeaconServer(base_url, site, process, stderr_path, lines)
    finally:
        stop()


@pytest.fixture
def server(tmp_path):
    with beacon_server(tmp_path) as started:
        yield started


@contextlib.contextmanager
def flask_server(app_dir, app: str = "app", port: int = 0, env=None, debug: bool = False):
    """Runs Flask's own dev server (`flask --app APP run`, with `--debug` its reloader and template
    auto-reload) on 127.0.0.1:PORT (a free one if 0) in `app_dir` until the block ends; yields
    (port, process) once it accepts connections."""
    port = port or _free_port()
    # Outside the app's folder: the tests' app lives in the repository.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", app, "run", "--host", "127.0.0.1", "--port", str(port),
         *(["--debug"] if debug else [])],
        cwd=app_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
             # Werkzeug's stat reloader whatever is installed (see stat_reloader/sitecustomize.py).
             "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent / "stat_reloader"),
                                                         os.environ.get("PYTHONPATH")])),
             **(env or {})},
        # Its own process group: with --debug the reloader runs the app in a child process,
        # which must stop with it.
        start_new_session=True)
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=STOP_TIMEOUT)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def wait_for_port(port: int, process=None, timeout: float = START_TIMEOUT) -> None:
    """Until something accepts connections on 127.0.0.1:PORT (bounded; fails if `process` exits)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            pytest.fail(f"nothing accepted connections on 127.0.0.1:{port} within {timeout:.0f} s")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of its own on a free loopback port (the same port across `stop` and `start`,
    so a test can take Redis away and bring it back under Beacon)."""

    def __init__(self, directory):
        self.port = _free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
            self.process = None


@contextlib.contextmanager
def redis_server(directory):
    """A started `RedisServer`, killed when the block ends."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of its own on a free loopback port, for the test's length."""
    with redis_server(tmp_path) as server:
        yield server.url


def _start_chromium(env=None) -> webdriver.Chrome:
    """A headless Chromium; `env` (HOME, say, whose NSS database it trusts certificates from)
    goes to chromedriver, which starts the browser with it."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    # Keep the browser's console (e.g. the client's "[beacon]" debug lines) for failure messages.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
    browser.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    browser.set_script_timeout(10)
    return browser


@pytest.fixture
def driver():
    browser = _start_chromium()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def second_driver():
    """A second, separate headless Chromium (its own profile and connection pool), like `driver`."""
    browser = _start_chromium()
    try:
        yield browser
    finally:
        browser.quit()
