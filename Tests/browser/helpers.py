"""Waiting helpers shared by the browser tests: bounded waits that fail with the browser console
and the server's log."""

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


def wait_until(driver, server, condition, what: str, timeout: float = WAIT):
    """Polls `condition(driver)` until it returns something truthy, for at most `timeout` seconds.

    `condition` may also be a JavaScript string (run with execute_script). Errors while the page
    is navigating (no document, stale elements) count as "not yet". On timeout, fails with the
    last value or error, the browser console, and the server's log.
    """
    state = {"last": None}

    def check(d):
        try:
            value = d.execute_script(condition) if isinstance(condition, str) else condition(d)
        except WebDriverException as error:  # navigation in progress, element gone, ...
            state["last"] = f"{type(error).__name__}: {error.msg}"
            return False
        state["last"] = repr(value)
        return value

    try:
        return WebDriverWait(driver, timeout, poll_frequency=POLL).until(check)
    except TimeoutException:
        pytest.fail(
            f"timed out after {timeout:.0f} s waiting until {what}\n"
            f"last value: {state['last']}\nurl: {driver.current_url}\n"
            f"--- browser console ---\n{browser_console(driver)}\n{server.log()}",
            pytrace=False,
        )
