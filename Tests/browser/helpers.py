"""Waiting helpers shared by the browser tests: bounded waits that fail with the browser console
and the server's log."""

import http.client
import json
import os
import socket
import tempfile
import threading
import time
import urllib.parse

import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 10.0  # seconds, the bound on every wait for the page
HTTP_TIMEOUT = 10.0  # seconds to connect to the event stream and get its headers
POLL = 0.05  # seconds between polls inside WebDriverWait

CONNECTED_JS = "return !!(window.__beacon && window.__beacon.connected === true);"


def browser_console(driver) -> str:
    try:
        entries = driver.get_log("browser")
    except WebDriverException as error:
        return f"(browser console unavailable: {error.msg})"
    return "\n".join(f"{e.get('level')} {e.get('message')}" for e in entries) or "(empty)"


def wait_until(driver, server, condition, what: str, timeout: float = WAIT, details=None):
    """Polls `condition(driver)` (or a JavaScript string) until truthy, for at most `timeout` s.

    Errors while the page is navigating (no document, stale elements) count as "not yet". On
    timeout, fails with the last value or error and `details()` — by default the URL, the browser
    console and the server's log.
    """
    state = {"last": None}

    def check(d):
        try:
            value = d.execute_script(condition) if isinstance(condition, str) else condition(d)
        except WebDriverException as error:
            state["last"] = f"{type(error).__name__}: {error.msg}"
            return False
        state["last"] = repr(value)
        return value

    try:
        return WebDriverWait(driver, timeout, poll_frequency=POLL).until(check)
    except TimeoutException:
        extra = details() if details else (
            f"url: {driver.current_url}\n--- browser console ---\n{browser_console(driver)}\n{server.log()}")
        pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}\nlast value: {state['last']}\n{extra}",
                    pytrace=False)


def write_in_place(path, text: str) -> None:
    """Plain open-for-writing + close: the way most programs save a file."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_atomically(path, text: str) -> None:
    """Writes a dot-named temporary file next to `path` (editors' safe save; the watcher ignores
    dotfiles, so only the rename onto `path` is a change), then renames it over `path`."""
    directory, name = os.path.split(os.fspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


class StreamRecorder:
    """Reads `GET /__beacon/events` (or `path`, with extra `headers`) in a thread and keeps every
    event: (seconds, name, data); `last_id` is the id of the last one."""

    def __init__(self, server, path: str = "/__beacon/events", headers=None):
        self.server = server
        self.start = time.monotonic()
        self.events = []
        self.last_id = None
        self.closed = False
        self._cond = threading.Condition()
        parts = urllib.parse.urlsplit(server.base_url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
        self._conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self._response = self._conn.getresponse()
        assert self._response.status == 200, f"GET /__beacon/events answered {self._response.status}"
        self._conn.sock.settimeout(None)  # idle streams only get a heartbeat every 15 s
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data, event_id = None, [], None
        try:
            while True:
                raw = self._response.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line == "":
                    if data:
                        text = "\n".join(data)
                        try:
                            parsed = json.loads(text)
                        except ValueError:
                            parsed = text
                        with self._cond:
                            self.events.append((time.monotonic() - self.start, name or "message", parsed))
                            self.last_id = event_id if event_id is not None else self.last_id
                            self._cond.notify_all()
                    name, data, event_id = None, [], None
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
                    elif field == "id":
                        event_id = value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the stream ended (the server stopped, or close() shut the socket down)
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def close(self) -> None:
        sock = self._conn.sock
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)  # unblocks the reader, which then ends
        except OSError:
            pass
        self._thread.join(timeout=HTTP_TIMEOUT)
        self._conn.close()

    def count(self) -> int:
        with self._cond:
            return len(self.events)

    def since(self, index: int) -> list:
        with self._cond:
            return list(self.events[index:])

    def describe(self) -> str:
        with self._cond:
            lines = [f"{t:8.3f}s {name} {json.dumps(data)}" for t, name, data in self.events]
        return "\n".join(lines) or "(none)"

    def wait_for(self, predicate, what: str, timeout: float = WAIT):
        """Waits until `predicate(events)` is truthy; fails with every event seen and the server log."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(list(self.events)) or self.closed, timeout)
            result = predicate(list(self.events))
        if not (ok and result):
            why = "the event stream ended" if self.closed else f"timed out after {timeout:.0f} s"
            pytest.fail(
                f"{why} waiting until the server pushed {what}\n"
                f"--- events pushed ---\n{self.describe()}\n{self.server.log()}",
                pytrace=False,
            )
        return result
