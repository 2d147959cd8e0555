"""The page client where a browser lacks what it uses: with no EventSource it leaves the page
working and silent (no console errors); with no SharedWorker or Web Locks it opens its own stream."""

import pytest

from conftest import beacon_server
from helpers import CONNECTED_JS, wait_until, write_in_place

# Runs before the injected client (which goes before </body>): the page's own script still runs.
PAGE = """<!doctype html>
<html><head><title>old browser</title>
<script>
  for (const name of %s) { try { delete window[name]; window[name] = undefined; } catch (e) {} }
  if (%s) { try { delete Navigator.prototype.locks; } catch (e) {} }
  window.pageScriptRan = true;
</script></head>
<body><h1>Still here</h1></body></html>
"""


def page(missing, no_locks):
    return PAGE % (repr(missing).replace("'", '"'), "true" if no_locks else "false")


def severe(driver):
    """Errors the page's scripts raised (not the network's, such as the missing favicon)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and e.get("source") != "network"]


def test_without_event_source_the_page_works_and_the_console_stays_clean(tmp_path, driver):
    with beacon_server(tmp_path) as server:
        (server.site_dir / "old.html").write_text(page(["EventSource", "SharedWorker", "BroadcastChannel"], True))
        driver.get(server.url("old.html"))
        wait_until(driver, server, "return window.__beacon && window.__beacon.transport === 'none'",
                   "the client gave up quietly")
        assert driver.execute_script("return window.pageScriptRan === true && document.querySelector('h1').textContent;") == "Still here"
        assert severe(driver) == [], "the client must not throw where EventSource is missing"


def test_without_shared_worker_or_web_locks_each_tab_streams_itself_and_stays_live(tmp_path, driver):
    with beacon_server(tmp_path) as server:
        target = server.site_dir / "plain.html"
        target.write_text(page(["SharedWorker", "BroadcastChannel"], True))
        driver.get(server.url("plain.html"))
        wait_until(driver, server, CONNECTED_JS, "the client connected on its own stream")
        assert driver.execute_script("return window.__beacon.transport;") == "direct"
        driver.execute_script("window.marker = 42;")
        write_in_place(target, target.read_text().replace("Still here", "Edited"))
        wait_until(driver, server, "return document.querySelector('h1').textContent === 'Edited'", "the edit was applied")
        assert driver.execute_script("return window.marker;") == 42
