"""Save → applied, measured in every tab: each tab reports how long a change took from its first
write on disk to showing in it; the terminal prints one line per batch and /__beacon/status keeps
p50/p95/max per action. Checked against the browser's own clock."""

import json
import time
import urllib.error
import urllib.request

from helpers import CONNECTED_JS, WAIT, wait_until, write_in_place

# Records, on the page's clock (the same wall clock as the test's), when a change shows.
WATCH_JS = """
window.__shown = {};
const watch = (name, probe) => {
  const before = probe();
  const timer = setInterval(() => {
    if (probe() !== before) { window.__shown[name] = Date.now(); clearInterval(timer); }
  }, 1);
};
watch('css', () => getComputedStyle(document.body).backgroundColor);
watch('patch', () => document.querySelector('h1').textContent);
"""


def status(server) -> dict:
    with urllib.request.urlopen(server.url("/__beacon/status"), timeout=WAIT) as answer:
        return json.loads(answer.read())


def test_the_tabs_report_save_to_applied_and_it_agrees_with_the_browser(server, driver):
    driver.get(server.url("/"))
    wait_until(driver, server, CONNECTED_JS, "the page's live client is connected")
    driver.execute_script(WATCH_JS)

    style = server.site_dir / "style.css"
    written = time.time() * 1000
    write_in_place(style, style.read_text() + "\nbody { background: rgb(1, 2, 3); }\n")
    shown = wait_until(driver, server, "return window.__shown.css", "the new stylesheet shows")
    browser_ms = shown - written
    figures = wait_until(driver, server, lambda d: status(server)["applied"].get("css"), "the tab's report arrives")
    assert figures["count"] == 1
    # The tab's figure starts when the server saw the write (a hair after it) and ends when the
    # swap was done (a hair before the page's probe saw it): a little under the browser's own.
    assert browser_ms - 40 <= figures["max"] <= browser_ms + 5, (figures, browser_ms)

    page = server.site_dir / "index.html"
    written = time.time() * 1000
    write_in_place(page, page.read_text().replace("Hello from Beacon", "Hello, measured"))
    shown = wait_until(driver, server, "return window.__shown.patch", "the patched heading shows")
    browser_ms = shown - written
    figures = wait_until(driver, server, lambda d: status(server)["applied"].get("patch"), "the patch report arrives")
    assert browser_ms - 40 <= figures["max"] <= browser_ms + 5, (figures, browser_ms)
    assert figures["p50"] <= figures["p95"] <= figures["max"]

    wait_until(driver, server, lambda d: "index.html → 1 tab patched in" in server.stderr_path.read_text(),
               "the terminal says how long the patch took")
    assert "style.css → 1 tab restyled in" in server.stderr_path.read_text()


def test_a_reload_is_timed_when_the_new_page_has_loaded(server, driver):
    driver.get(server.url("/"))
    wait_until(driver, server, CONNECTED_JS, "the page's live client is connected")
    script = server.site_dir / "app.js"
    write_in_place(script, script.read_text() + "\n// edited\n")
    figures = wait_until(driver, server, lambda d: status(server)["applied"].get("reload"), "the reloaded tab reports")
    assert 0 <= figures["max"] < 10000


def post(server, body: bytes):
    request = urllib.request.Request(server.url("/__beacon/applied"), data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_bad_reports_are_refused_and_counted_nowhere(server):
    for body, code in [
        (b"nope", b"invalid_json"),
        (json.dumps({"batch": 1, "action": "explode", "path": "/a", "ms": 3}).encode(), b"invalid_action"),
        (json.dumps({"batch": 1, "action": "css", "path": "a", "ms": 3}).encode(), b"invalid_path"),
        (json.dumps({"batch": 1, "action": "css", "path": "/a", "ms": -3}).encode(), b"invalid_ms"),
        (json.dumps({"batch": 1, "action": "css", "path": "/a", "ms": 3, "x": 1}).encode(), b"unknown_field"),
    ]:
        status_code, answer = post(server, body)
        assert status_code == 400 and code in answer, (body, answer)
    assert post(server, b"{" + b" " * 5000 + b"}")[0] == 413
    status_code, answer = post(server, b"[" * 3000 + b"]" * 3000)  # deeper than any parser should walk
    assert status_code in (400, 413), answer
    status_code, answer = post(server, b"[" * 1000 + b"]" * 1000)
    assert status_code == 400 and b"invalid_json" in answer, answer
    # The missing-files question needs a page.
    try:
        urllib.request.urlopen(server.url("/__beacon/missing"), timeout=WAIT)
        raise AssertionError("no page was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400 and b"page" in error.read()
    with urllib.request.urlopen(server.url("/__beacon/missing?page=%2Fnowhere%2F%00"), timeout=WAIT) as answer:
        assert json.loads(answer.read()) == {"missing": []}
    request = urllib.request.Request(server.url("/__beacon/applied"), data=b"{}", method="POST",
                                     headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    try:
        urllib.request.urlopen(request, timeout=WAIT)
        raise AssertionError("a cross-site report was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403
    assert status(server)["applied"] == {}
