"""`--open`: the desktop's browser is asked (xdg-open on PATH) to open the served URL, once the
server listens; without xdg-open the server serves on."""

import os
import time
import urllib.request

from conftest import beacon_server


def stand_in(bin_dir, record):
    """An `xdg-open` that records its argument, first on PATH."""
    bin_dir.mkdir()
    script = bin_dir / "xdg-open"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{record}"\n')
    script.chmod(0o755)


def test_open_asks_xdg_open_for_the_served_url(tmp_path, monkeypatch):
    record = tmp_path / "opened.txt"
    stand_in(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with beacon_server(tmp_path, extra_args=("--open",)) as server:
        deadline = time.monotonic() + 10
        while not (record.exists() and record.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record.read_text().splitlines() == [server.base_url], "xdg-open got the served URL, once"
        with urllib.request.urlopen(server.url("/"), timeout=10) as answer:
            assert answer.status == 200


def test_without_xdg_open_the_server_serves_on(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with beacon_server(tmp_path, extra_args=("--open",)) as server:
        with urllib.request.urlopen(server.url("/"), timeout=10) as answer:
            assert answer.status == 200
