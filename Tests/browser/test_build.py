"""`beacon serve OUTPUT --build CMD`: a site generator run on source changes, its output pushed
as one batch, build errors shown in the page, and what the page itself reports.

Two generators: a small script the tests write (it can fail, be slow or hang on request, and logs
each run outside the watched folder), and mkdocs, a real one from PyPI. Every wait is bounded.
"""

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import beacon_server
from helpers import CONNECTED_JS, WAIT, wait_until, write_in_place

GENERATOR = r'''
import os, pathlib, sys, time
root = pathlib.Path(__file__).resolve().parent
src, out, outside = root / "src", root / "out", root.parent
text = (src / "index.txt").read_text().strip()
log = outside / "builds.log"
with log.open("a") as f:
    f.write("start " + text + "\n")
if (outside / "hang").exists():
    (outside / "hang.pid").write_text(str(os.getpid()))
    time.sleep(120)
if (outside / "slow").exists():
    time.sleep(float((outside / "slow").read_text()))
if "BROKEN" in text:
    print("reading index.txt", flush=True)
    print("\x1b[31merror:\x1b[0m index.txt: BROKEN is not allowed <b>here</b>", file=sys.stderr, flush=True)
    sys.exit(2)
out.mkdir(exist_ok=True)
page = ('<!doctype html><html><head><title>t</title><link rel="stylesheet" href="site.css"></head>'
        '<body><h1 id="title">' + text + '</h1><p id="other">other</p></body></html>')
tmp = out / "index.html.tmp"
tmp.write_text(page)
os.replace(tmp, out / "index.html")
(out / "site.css").write_text((src / "site.css").read_text())
print("wrote out/index.html")
with log.open("a") as f:
    f.write("end " + text + "\n")
'''


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "gen.py").write_text(GENERATOR)
    (root / "src" / "index.txt").write_text("First title\n")
    (root / "src" / "site.css").write_text("h1 { color: rgb(0, 0, 200); }\n")
    return root


def builds(project) -> list:
    log = project.parent / "builds.log"
    return log.read_text().splitlines() if log.exists() else []


def wait_for(condition, what: str, server, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}\n{server.log()}", pytrace=False)


def serve(tmp_path, project, *args):
    return beacon_server(tmp_path, site_dir=False, cwd=project,
                         extra_args=("out", "--build", f"python3 gen.py", *args))


def open_page(driver, server, path="/"):
    driver.get(server.url(path))
    wait_until(driver, server, CONNECTED_JS, "the page's live client is connected")
    driver.execute_script("window.marker = 42;")


def overlay_text(driver):
    return driver.execute_script(
        "const h = document.querySelector('beacon-build-error');"
        "return h && h.shadowRoot ? h.shadowRoot.textContent : null;")


class Events:
    """The default channel's event stream, read from a plain socket (no browser)."""

    def __init__(self, server):
        port = int(server.base_url.rsplit(":", 1)[1].strip("/"))
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        self.connection.request("GET", "/__beacon/events")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.seen = []  # every event name read so far, in order

    def next(self, name: str, timeout: float = WAIT) -> dict:
        deadline = time.monotonic() + timeout
        event, data = None, []
        while time.monotonic() < deadline:
            try:
                line = self.response.fp.readline().decode()
            except socket.timeout:
                break
            if not line:
                break
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "":
                if event is not None:
                    self.seen.append(event)
                if event == name:
                    return json.loads("\n".join(data))
                event, data = None, []
        pytest.fail(f"no `{name}` event within {timeout:.0f} s")

    def close(self):
        self.connection.close()


# --- The generator script -------------------------------------------------------------------


@pytest.mark.parametrize("watching", [(), ("--poll", "--poll-interval", "100")], ids=["inotify", "polling"])
def test_the_first_build_runs_before_serving_and_an_edit_patches_the_page_in_place(tmp_path, project, driver,
                                                                                   watching):
    with serve(tmp_path, project, *watching) as server:
        # `Serving …` came after the first build: its page is there.
        assert builds(project) == ["start First title", "end First title"]
        assert "build │" not in "".join(server.stdout_lines), "the build's output belongs on stderr"
        open_page(driver, server)
        assert driver.find_element(By.ID, "title").text == "First title"

        write_in_place(project / "src" / "index.txt", "Second title\n")
        wait_until(driver, server, "return document.getElementById('title').textContent === 'Second title'",
                   "the page shows the rebuilt title")
        assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of being patched"
        assert builds(project)[-2:] == ["start Second title", "end Second title"]
        log = server.stderr_path.read_text()
        assert "build │ wrote out/index.html" in log and "build finished" in log


def test_a_broken_build_shows_the_overlay_and_the_next_good_one_clears_it(tmp_path, project, driver, second_driver):
    with serve(tmp_path, project) as server:
        open_page(driver, server)
        write_in_place(project / "src" / "index.txt", "BROKEN title\n")
        text = wait_until(driver, server, lambda d: overlay_text(d), "the build-error overlay shows")
        assert "exited with status 2" in text
        assert "python3 gen.py" in text
        assert "BROKEN is not allowed <b>here</b>" in text, "the generator's message, as text"
        # Colours rendered, markup in the output kept as text.
        assert driver.execute_script(
            "const r = document.querySelector('beacon-build-error').shadowRoot;"
            "return [...r.querySelectorAll('pre span.c31')].map(s => s.textContent).join('|');") == "error:"
        assert driver.execute_script(
            "return document.querySelector('beacon-build-error').shadowRoot.querySelector('pre b');") is None
        assert "error" in server.stderr_path.read_text() and "build failed: exited with status 2" in server.stderr_path.read_text()

        # A page opened while the build is failing shows it at once.
        second_driver.get(server.url("/"))
        wait_until(second_driver, server, lambda d: overlay_text(d), "a page opened later shows the overlay too")

        # Esc closes it.
        second_driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        wait_until(second_driver, server, lambda d: overlay_text(d) is None, "Esc closes the overlay")

        write_in_place(project / "src" / "index.txt", "Fixed title\n")
        wait_until(driver, server, lambda d: overlay_text(d) is None, "the overlay goes after a good build")
        wait_until(driver, server, "return document.getElementById('title').textContent === 'Fixed title'",
                   "the page shows the fixed build")
        assert driver.execute_script("return window.marker;") == 42


def test_no_overlay_keeps_errors_in_the_terminal(tmp_path, project):
    with serve(tmp_path, project, "--no-overlay") as server:
        events = Events(server)
        try:
            write_in_place(project / "src" / "index.txt", "BROKEN again\n")
            wait_for(lambda: "build failed" in server.stderr_path.read_text(), "the terminal reports the failure", server)
            write_in_place(project / "src" / "index.txt", "fine\n")
            # The good build's page change comes, and no `build` event went before it.
            change = events.next("fragment")
            assert change["path"] == "/index.html"
            assert "build" not in events.seen, events.seen
        finally:
            events.close()


def test_a_burst_of_edits_during_a_slow_build_gives_exactly_one_more_build(tmp_path, project):
    with serve(tmp_path, project) as server:
        (project.parent / "slow").write_text("1.5")
        write_in_place(project / "src" / "index.txt", "edit\n")
        wait_for(lambda: "start edit" in builds(project), "the slow build starts", server)
        for n in range(6):
            write_in_place(project / "src" / "index.txt", f"burst {n}\n")
        wait_for(lambda: "end burst 5" in builds(project), "the one build after the burst ends", server, timeout=20)
        (project.parent / "slow").unlink()
        write_in_place(project / "src" / "index.txt", "after\n")
        wait_for(lambda: "end after" in builds(project), "the build after that ends", server, timeout=20)
        assert builds(project) == [
            "start First title", "end First title",
            "start edit", "end edit",
            "start burst 5", "end burst 5",
            "start after", "end after",
        ], "builds piled up"


def test_a_build_that_hangs_is_ended_at_the_timeout_and_reported(tmp_path, project):
    with serve(tmp_path, project, "--build-timeout", "1") as server:
        events = Events(server)
        try:
            (project.parent / "hang").write_text("")
            write_in_place(project / "src" / "index.txt", "hangs\n")
            report = events.next("build", timeout=15)
            assert report["ok"] is False and report["status"] is None
            assert "timed out after 1 s" in report["reason"]
            pid = int((project.parent / "hang.pid").read_text())
            # The whole process group was ended, the generator with the shell.
            wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
                     "the hung generator is gone", server)
            assert "timed out after 1 s" in server.stderr_path.read_text()
            # It keeps building after that.
            (project.parent / "hang").unlink()
            write_in_place(project / "src" / "index.txt", "recovered\n")
            assert events.next("build", timeout=15)["ok"] is True
        finally:
            events.close()


def test_a_command_that_does_not_exist_is_one_clear_line_and_the_output_is_still_served(tmp_path, project):
    (project / "out").mkdir()
    (project / "out" / "index.html").write_text("<!doctype html><title>t</title><p>old build</p>")
    with beacon_server(tmp_path, site_dir=False, cwd=project,
                       extra_args=("out", "--build", "no-such-generator-5f3a --flag")) as server:
        log = server.stderr_path.read_text()
        assert "build failed: exited with status 127 (command not found)" in log, log
        with urllib.request.urlopen(server.url("/"), timeout=WAIT) as answer:
            assert b"old build" in answer.read()


@pytest.mark.parametrize("args, message", [
    (("--build", ""), "--build needs a command"),
    (("--build", "true", "--build-timeout", "0"), "--build-timeout must be more than 0"),
    (("--build", "true", "--build-timeout", "nan"), "--build-timeout must be more than 0"),
    (("--watch", "src"), "--watch goes with --proxy URL or --build CMD"),
    (("--build", "true", "--proxy", "http://127.0.0.1:9"), "--build and --proxy do not go together"),
    (("--build", "true", "--watch", "out/src"), "inside the output folder"),
])
def test_bad_build_options_are_one_line_and_exit_1(tmp_path, project, args, message):
    import subprocess
    from conftest import _beacon_bin
    (project / "out" / "src").mkdir(parents=True)
    done = subprocess.run([str(_beacon_bin()), "serve", "out", "--port", "0", *args], cwd=project,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3, done.stderr


# --- mkdocs, a real generator ------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs-project"
    (root / "docs").mkdir(parents=True)
    (root / "mkdocs.yml").write_text("site_name: Beacon test\n")
    (root / "docs" / "index.md").write_text("# Welcome\n\nFirst paragraph.\n")
    return root


def test_mkdocs_edit_updates_in_place_and_its_errors_show_in_the_page(tmp_path, docs, driver):
    with beacon_server(tmp_path, site_dir=False, cwd=docs,
                       extra_args=("site", "--build", "python3 -m mkdocs build -q -d site")) as server:
        open_page(driver, server)
        assert "Welcome" in driver.find_element(By.TAG_NAME, "h1").text

        write_in_place(docs / "docs" / "index.md", "# Welcome back\n\nFirst paragraph.\n")
        wait_until(driver, server, "return document.querySelector('h1').textContent.includes('Welcome back')",
                   "the page shows the rebuilt heading")
        assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of being patched"

        write_in_place(docs / "mkdocs.yml", "site_name: [unclosed\n")
        text = wait_until(driver, server, lambda d: overlay_text(d), "mkdocs's error shows in the page", timeout=20)
        assert "mkdocs build" in text and "exited with status 1" in text
        assert "rror" in text  # mkdocs's own message (its wording varies between versions)

        write_in_place(docs / "mkdocs.yml", "site_name: Beacon test\n")
        wait_until(driver, server, lambda d: overlay_text(d) is None, "the overlay goes once mkdocs builds again",
                   timeout=20)


# --- What the page reports: missing files, console -------------------------------------------


NOTE_JS = "const h = document.querySelector('beacon-notes'); return h && h.shadowRoot.textContent;"


def test_a_missing_asset_prints_a_line_and_shows_a_note_on_that_page(tmp_path, project, driver):
    (project / "out").mkdir()
    with serve(tmp_path, project) as server:
        (project / "out" / "broken.html").write_text(
            '<!doctype html><html><head><link rel="stylesheet" href="/css/gone.css"></head>'
            '<body><p>page</p></body></html>')
        open_page(driver, server, "/broken.html")
        wait_for(lambda: "404 /css/gone.css ← /broken.html" in server.stderr_path.read_text(),
                 "the terminal names the missing file and the page", server)
        # Asked for before the page's stream was open: the page finds it in its own resource timing.
        text = wait_until(driver, server, NOTE_JS, "the page shows a note about the missing stylesheet")
        assert "/css/gone.css" in text
        # Asked for later: the server's `missing` event brings it.
        driver.execute_script("fetch('/data/none.json');")
        wait_until(driver, server, lambda d: "/data/none.json" in (d.execute_script(NOTE_JS) or ""),
                   "the page shows a note about the file it fetched")
        assert "404 /data/none.json ← /broken.html" in server.stderr_path.read_text()
        assert driver.execute_script("return window.marker;") == 42, "a note is not a reload"
        # × closes a note.
        driver.execute_script(
            "document.querySelector('beacon-notes').shadowRoot.querySelector('button').click();")
        wait_until(driver, server,
                   "return document.querySelector('beacon-notes').shadowRoot.querySelectorAll('.note').length === 1;",
                   "the note is closed")
        # The browser's own guess is not the page's doing.
        assert "/favicon.ico ←" not in server.stderr_path.read_text()


CONSOLE_PAGE = """<!doctype html><html><head><title>c</title></head><body><p>console</p>
<script src="/app.js"></script></body></html>"""
CONSOLE_SCRIPT = """function fail() { console.error("boom", {answer: 42}); }
function warn() { console.warn("careful"); }
function throwIt() { setTimeout(() => { null.missing; }, 0); }
function reject() { Promise.reject(new Error("nobody caught me")); }
"""


def console_lines(server):
    return [line for line in server.stderr_path.read_text().splitlines() if "beacon.page" in line]


def test_forward_console_prints_the_pages_errors_with_their_place(tmp_path, project, driver):
    (project / "out").mkdir()
    (project / "out" / "console.html").write_text(CONSOLE_PAGE)
    (project / "out" / "app.js").write_text(CONSOLE_SCRIPT)
    with serve(tmp_path, project, "--forward-console") as server:
        open_page(driver, server, "/console.html")
        driver.execute_script("fail(); warn(); throwIt(); reject();")
        wait_for(lambda: len(console_lines(server)) >= 4, "four reports are printed", server)
        text = "\n".join(console_lines(server))
        assert 'console.error /console.html /app.js:1:' in text and 'boom {"answer":42}' in text, text
        assert "console.warn /console.html /app.js:2:" in text and "careful" in text, text
        assert "error /console.html /app.js:3:" in text and "Cannot read properties of null" in text, text
        assert "rejection /console.html" in text and "nobody caught me" in text, text

        # Repeats are collapsed: one line, and the count once they stop.
        before = len(console_lines(server))
        driver.execute_script("for (let i = 0; i < 5; i++) console.error('again');")
        wait_for(lambda: any("repeated 4 more times" in line for line in console_lines(server)),
                 "the repeats are counted", server)
        new = console_lines(server)[before:]
        assert sum("again" in line for line in new) == 1, new


def post_console(server, body: bytes, headers=None):
    request = urllib.request.Request(server.url("/__beacon/console"), data=body, method="POST",
                                     headers={"Content-Type": "text/plain;charset=UTF-8", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_console_route_refuses_bad_input_and_keeps_serving(tmp_path, project):
    good = json.dumps({"kind": "console.error", "message": "hello from a test", "page": "/"}).encode()
    with serve(tmp_path, project, "--forward-console") as server:
        assert post_console(server, good)[0] == 204
        status, body = post_console(server, b"x" * 20000)
        assert status == 413 and b"body_too_large" in body
        status, body = post_console(server, b"not json")
        assert status == 400 and b"not JSON" in body
        status, body = post_console(server, json.dumps({"kind": "shout", "message": "x", "page": "/"}).encode())
        assert status == 400 and b"kind must be one of" in body
        status, body = post_console(server, json.dumps({"kind": "error", "message": "x", "page": "/", "extra": 1}).encode())
        assert status == 400 and b"unknown field" in body
        status, body = post_console(server, json.dumps({"kind": "error", "message": 5, "page": "/"}).encode())
        assert status == 400 and b"message must be a string" in body
        # Cross-site: refused before it is read, nothing printed.
        evil = json.dumps({"kind": "error", "message": "from evil", "page": "/"}).encode()
        status, _ = post_console(server, evil, {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert status == 403
        # A flood: the rate limit answers 429 with Retry-After.
        statuses = [post_console(server, json.dumps({"kind": "error", "message": f"flood {n}", "page": "/"}).encode())[0]
                    for n in range(80)]
        assert 429 in statuses and statuses.count(204) >= 20
        log = server.stderr_path.read_text()
        assert "from evil" not in log
        assert "hello from a test" in log
        with urllib.request.urlopen(server.url("/"), timeout=WAIT) as answer:
            assert answer.status == 200
        request = urllib.request.Request(server.url("/__beacon/console"), method="GET")
        try:
            urllib.request.urlopen(request, timeout=WAIT)
            raise AssertionError("GET was accepted")
        except urllib.error.HTTPError as error:
            assert error.code == 405


def test_the_console_route_is_off_without_the_flag(tmp_path, project):
    with serve(tmp_path, project) as server:
        status, body = post_console(server, json.dumps({"kind": "error", "message": "x", "page": "/"}).encode())
        assert status == 404 and b"--forward-console" in body


def test_ctrl_c_ends_a_running_build_with_the_server(tmp_path, project):
    import signal
    with serve(tmp_path, project) as server:
        (project.parent / "hang").write_text("")
        write_in_place(project / "src" / "index.txt", "hangs\n")
        wait_for(lambda: (project.parent / "hang.pid").exists(), "the hanging build started", server)
        pid = int((project.parent / "hang.pid").read_text())
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=10)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
                 "the build ended with the server", server)


CSP_PAGE = """<!doctype html><html><head>
<meta http-equiv="Content-Security-Policy"
      content="default-src 'self'; script-src 'nonce-c3Bhcmtz'; style-src 'self'">
<title>csp</title><script nonce="c3Bhcmtz">window.own = 1;</script></head>
<body><h1>strict</h1></body></html>"""


def test_the_overlay_works_on_a_page_with_a_strict_content_security_policy(tmp_path, project, driver):
    with serve(tmp_path, project) as server:
        (project / "out" / "csp.html").write_text(CSP_PAGE)
        # The client runs (it carries the page's nonce) and its overlay is styled (a constructed
        # stylesheet, which the policy does not block).
        open_page(driver, server, "/csp.html")
        write_in_place(project / "src" / "index.txt", "BROKEN under CSP\n")
        text = wait_until(driver, server, lambda d: overlay_text(d), "the overlay shows under the policy")
        assert "exited with status 2" in text
        assert driver.execute_script(
            "const b = document.querySelector('beacon-build-error').shadowRoot.querySelector('.backdrop');"
            "return getComputedStyle(b).position;") == "fixed"
        refused = [e for e in driver.get_log("browser") if "Content Security Policy" in e.get("message", "")]
        assert not refused, refused


def test_a_build_that_writes_into_its_sources_is_stopped_after_three_runs_in_a_row(tmp_path, project):
    """A generator that writes a cache beside its sources would start itself for ever; Beacon
    notices, says which paths to --ignore, and waits for the next real edit."""
    gen = project / "gen.py"
    gen.write_text(gen.read_text() + "\n(src / 'cache.txt').write_text(str(time.time()))\n")
    with serve(tmp_path, project) as server:
        wait_for(lambda: "keeps changing its own sources" in server.stderr_path.read_text(),
                 "Beacon notices the loop", server, timeout=20)
        log = server.stderr_path.read_text()
        assert "src/cache.txt" in log and "--ignore" in log, log
        # The first build and three more, each started only by the one before: then no more.
        starts = [line for line in builds(project) if line.startswith("start")]
        assert len(starts) == 4, builds(project)
        # A real edit builds again (and the loop is noticed again).
        write_in_place(project / "src" / "index.txt", "edited\n")
        wait_for(lambda: "start edited" in builds(project), "the edit builds", server)
        wait_for(lambda: server.stderr_path.read_text().count("keeps changing its own sources") == 2,
                 "the loop is noticed again", server, timeout=20)
