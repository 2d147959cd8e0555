"""Polling instead of inotify (`--poll`, `--no-poll`, `--poll-interval`, `BEACON_POLL`), end to end.

The same edits go to two servers side by side, one watching with inotify and one polling every
100 ms, and both must push the same events; a real Chromium then shows a stylesheet swapped and
a page patched in place under polling alone. Every wait is bounded.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import _beacon_bin, beacon_server
from helpers import CONNECTED_JS, WAIT, StreamRecorder, wait_until, write_atomically, write_in_place

POLL_ARGS = ("--poll", "--poll-interval", "100")


def events_after(stream, index):
    """The events pushed since `index`, as (name, paths, pages): what pages act on, without ids or HTML."""
    out = []
    for _, name, data in stream.since(index):
        if name == "hello" or not isinstance(data, dict):
            continue
        pages = data.get("pages")
        out.append((name, tuple(sorted(data.get("paths") or [])), None if pages is None else tuple(sorted(pages))))
    return out


def hello(stream):
    stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "its hello")


def move_folder_in(site, name, files):
    """A folder with files, made outside the site and renamed in: one step for either watcher."""
    outside = tempfile.mkdtemp(prefix="beacon-poll-", dir=site.parent)
    for relative, text in files.items():
        path = os.path.join(outside, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_in_place(path, text)
    os.rename(outside, site / name)


# Each case is one step on the site (a write, a rename, a removal), so neither watcher can split it
# into two batches; the name says what a live-reload user does.
CASES = [
    ("css edit", lambda site: write_in_place(site / "style.css", (site / "style.css").read_text() + "\nb{}\n")),
    ("css safe-save", lambda site: write_atomically(site / "style.css", (site / "style.css").read_text() + "\ni{}\n")),
    ("html edit", lambda site: write_in_place(site / "about.html", (site / "about.html").read_text() + "<p>x</p>")),
    ("html safe-save", lambda site: write_atomically(site / "index.html", (site / "index.html").read_text() + " ")),
    ("script edit", lambda site: write_in_place(site / "app.js", (site / "app.js").read_text() + "\n;\n")),
    ("new page", lambda site: write_atomically(site / "new.html", "<html><body>new</body></html>")),
    ("page renamed", lambda site: os.rename(site / "new.html", site / "renamed.html")),
    ("page deleted", lambda site: os.unlink(site / "renamed.html")),
    ("new folder with pages", lambda site: move_folder_in(site, "blog", {"index.html": "<p>blog</p>",
                                                                        "posts/one.html": "<p>1</p>"})),
    ("page in new folder edited", lambda site: write_in_place(site / "blog/posts/one.html", "<p>one</p>")),
    ("folder deleted", lambda site: shutil.rmtree(site / "blog")),
    ("ignored files", lambda site: [write_in_place(site / "page.html.swp", "x"), os.mkdir(site / "node_modules"),
                                    write_in_place(site / "node_modules/x.js", "x"),
                                    write_in_place(site / "index.html", (site / "index.html").read_text() + "\n")]),
]


def wait_for_same(inotify, polled, marks, what):
    """Until both servers pushed something since `marks` and the same things (order within a
    batch aside); bounded, failing with both event logs."""
    deadline = time.monotonic() + WAIT
    while True:
        want, got = events_after(inotify, marks[0]), events_after(polled, marks[1])
        if want and sorted(want) == sorted(got):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"after '{what}', polling pushed other events than inotify\n"
                        f"inotify: {want}\npolled: {got}\n--- inotify's stream ---\n{inotify.describe()}\n"
                        f"--- polled stream ---\n{polled.describe()}\n{inotify.server.log()}\n{polled.server.log()}",
                        pytrace=False)
        time.sleep(0.02)


def test_polling_pushes_the_same_events_as_inotify(tmp_path):
    with beacon_server(tmp_path, name="inotify") as inotify_server, \
            beacon_server(tmp_path, name="polled", extra_args=POLL_ARGS) as polled_server:
        inotify, polled = StreamRecorder(inotify_server), StreamRecorder(polled_server)
        try:
            hello(inotify)
            hello(polled)
            for what, edit in CASES:
                marks = (inotify.count(), polled.count())
                edit(inotify_server.site_dir)
                edit(polled_server.site_dir)
                wait_for_same(inotify, polled, marks, what)
        finally:
            inotify.close()
            polled.close()


def test_the_startup_line_says_which_folders_are_polled_and_why(tmp_path):
    with beacon_server(tmp_path, extra_args=POLL_ARGS) as server:
        log = server.log()
        assert f"watching {server.site_dir.resolve()} by polling every 100 ms: asked for (--poll" in log, log
    with beacon_server(tmp_path, name="default") as server:
        assert "by polling" not in server.log(), "a tmp folder is watched with inotify unless --poll asks"


def test_beacon_poll_in_the_environment_polls(tmp_path, monkeypatch):
    monkeypatch.setenv("BEACON_POLL", "1")
    with beacon_server(tmp_path, extra_args=("--poll-interval", "100")) as server:
        assert "by polling every 100 ms" in server.log()
        stream = StreamRecorder(server)
        try:
            hello(stream)
            before = stream.count()
            write_in_place(server.site_dir / "style.css", "body { color: red; }\n")
            stream.wait_for(lambda events: any(name == "css" for _, name, _ in events[before:]),
                            "a css event for the edited style.css")
        finally:
            stream.close()
    # --no-poll wins over the variable.
    with beacon_server(tmp_path, name="no-poll", extra_args=("--no-poll",)) as server:
        assert "by polling" not in server.log()


@pytest.mark.parametrize("args, env, message", [
    (["--poll", "--no-poll"], {}, "--poll and --no-poll cannot go together"),
    (["--poll-interval", "0"], {}, "--poll-interval must be between 10 and 60000 milliseconds, got 0"),
    (["--poll-interval", "-5"], {}, "--poll-interval must be between 10 and 60000 milliseconds, got -5"),
    (["--poll", "--poll-interval", "abc"], {}, "--poll-interval"),
    ([], {"BEACON_POLL": "yes"}, "BEACON_POLL must be 1"),
], ids=["poll-and-no-poll", "interval-zero", "interval-negative", "interval-not-a-number", "bad-env"])
def test_bad_polling_options_are_one_line_errors(tmp_path, args, env, message):
    result = subprocess.run([str(_beacon_bin()), "serve", str(tmp_path), "--port", "0", *args],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env})
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("beacon: error: "), result.stderr
    assert message in result.stderr
    assert result.stdout == ""


# --- in a real browser, under polling alone --------------------------------------------------


def open_connected(driver, server, path: str = "") -> None:
    driver.get(server.url(path))
    wait_until(driver, server, CONNECTED_JS, f"the live client on /{path} is connected")
    wait_until(driver, server, "return document.readyState === 'complete';", f"/{path} finished loading")
    driver.execute_script("window.marker = 42;")


def test_polled_css_edit_swaps_and_html_edit_patches_in_place(tmp_path, driver):
    with beacon_server(tmp_path, extra_args=POLL_ARGS) as server:
        open_connected(driver, server)
        style = server.site_dir / "style.css"
        write_atomically(style, style.read_text(encoding="utf-8") + "\nbody { background-color: rgb(1, 2, 3); }\n")
        wait_until(driver, server, "return getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)';",
                   "the new background applies")
        assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of swapping the sheet"

        page = server.site_dir / "index.html"
        text = page.read_text(encoding="utf-8")
        assert "</body>" in text
        write_in_place(page, text.replace("</body>", '<p id="polled">seen by polling</p></body>'))
        wait_until(driver, server, "return !!document.getElementById('polled');", "the new paragraph is patched in")
        assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of being patched"
