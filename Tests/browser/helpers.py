"""Waiting helpers shared by the browser tests: bounded waits that fail with the browser console
and the server's log."""

import os
import tempfile

import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 10.0  # seconds, the bound on every wait for the page
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
