"""Instant updates, end to end: HTML edits morphed into the open page, per-page targeting, bursts.

A real `beacon serve`, a real headless Chromium (tabs share one event stream through the client's
SharedWorker) and real file edits. Next to the browser, a plain HTTP client reads
`/__beacon/events` the whole time (`stream`), so every failure shows what the server pushed.

The server learns which page uses which file from the requests the browser makes (their Referer),
so every test opens its pages, and lets them load, before it edits anything. The files a test
serves are put in place before any page is open, and the test waits until the server has announced
them: a new file no page uses reloads every page.

Every wait is bounded; failures show the last value seen, the browser console, the events pushed
and the server's log.
"""

import http.client
import json
import os
import time
import urllib.parse

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

import helpers
from helpers import CONNECTED_JS, HTTP_TIMEOUT, WAIT, StreamRecorder, browser_console, write_atomically, write_in_place

FAST = 5.0  # seconds: a navigation or fetch that must not queue behind open event streams

APPLIED_TYPES_JS = "return window.__beacon.applied.map(a => a.type);"
MARKER_JS = "return window.marker;"


# --- the event stream, read by a plain HTTP client -------------------------------------------


@pytest.fixture
def stream(server):
    recorder = StreamRecorder(server)
    recorder.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "its hello")
    try:
        yield recorder
    finally:
        recorder.close()


# --- helpers ---------------------------------------------------------------------------------


def diagnostics(driver, server, stream) -> str:
    return (f"url: {driver.current_url}\n--- browser console ---\n{browser_console(driver)}\n"
            f"--- events pushed ---\n{stream.describe()}\n{server.log()}")


def wait_until(driver, server, stream, condition, what: str, timeout: float = WAIT, show: str = None):
    """The shared bounded wait; on timeout it also shows what `show` (JavaScript) returns and the
    events the server pushed."""
    def details():
        shown = ""
        if show:
            try:
                shown = f"page state: {driver.execute_script(show)!r}\n"
            except WebDriverException as error:
                shown = f"page state unavailable: {error.msg}\n"
        return shown + diagnostics(driver, server, stream)

    return helpers.wait_until(driver, server, condition, what, timeout, details)


def check(driver, server, stream, ok: bool, message: str) -> None:
    """An assertion whose failure shows the console, the events pushed and the server log."""
    if not ok:
        pytest.fail(f"{message}\n{diagnostics(driver, server, stream)}", pytrace=False)


def open_connected(driver, server, stream, path: str = "", new_tab: bool = False) -> str:
    """Opens `path` (in a new tab if asked), waits for the live client's hello, sets window.marker.

    Returns the tab's window handle.
    """
    if new_tab:
        driver.switch_to.new_window("tab")
    try:
        driver.get(server.url(path))
    except WebDriverException as error:  # e.g. the page load timed out: no connection to spare
        pytest.fail(f"opening /{path} failed: {type(error).__name__}: {error.msg}\n"
                    f"{diagnostics(driver, server, stream)}", pytrace=False)
    wait_until(driver, server, stream, CONNECTED_JS, f"the live client on /{path} is connected")
    wait_until(driver, server, stream, "return document.readyState === 'complete';", f"/{path} finished loading")
    driver.execute_script("window.marker = 42;")
    return driver.current_window_handle


def put_files(server, stream, files: dict) -> None:
    """Puts files into the served site before any page is open; waits until the server announced them.

    Call this before opening pages: a file no page uses yet makes every page reload. New folders
    are made first, and announced, before files go into them (a file written into a folder the
    watcher has not started watching yet would go unnoticed).
    """
    for folder in sorted({os.path.dirname(name) for name in files} - {""}):
        if not (server.site_dir / folder).is_dir():
            before = stream.count()
            (server.site_dir / folder).mkdir(parents=True)
            stream.wait_for(lambda events: any(
                isinstance(data, dict) and "/" + folder in [data.get("path"), *(data.get("paths") or [])]
                for _, _, data in events[before:]), f"an event naming the new folder /{folder}")
    before = stream.count()
    for name, text in files.items():
        write_atomically(server.site_dir / name, text)
    wanted = {"/" + name for name in files}

    def announced(events):
        seen = set()
        for _, name, data in events[before:]:
            if isinstance(data, dict):
                if name == "reload" and data.get("pages") is None:
                    return True  # every page reloads: the whole batch is announced
                seen.update(data.get("paths") or [data.get("path")])
        return wanted <= seen

    stream.wait_for(announced, f"events naming every new file {sorted(wanted)}")


def status(server) -> dict:
    """GET /__beacon/status, parsed."""
    parts = urllib.parse.urlsplit(server.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", "/__beacon/status")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, f"GET /__beacon/status answered {response.status}: {body!r}"
        return json.loads(body)
    finally:
        conn.close()


def page(body: str, title: str = "Instant updates", head: str = "") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def applied_types(driver) -> list:
    return driver.execute_script(APPLIED_TYPES_JS)


def text_of(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent;")


def timed(label: str, started: float) -> None:
    print(f"[timing] {label}: {(time.monotonic() - started) * 1000:.0f} ms")


def edit_and_wait_for_patch(driver, server, stream, path, text: str, what: str) -> None:
    """Writes `text` to `path` and waits for one more `patched` in the current tab (a fence)."""
    before = applied_types(driver).count("patched")
    write_atomically(path, text)
    wait_until(driver, server, stream,
               f"return window.__beacon.applied.filter(a => a.type === 'patched').length > {before};", what)


# --- HTML edits morphed in place -------------------------------------------------------------

HOME = page(
    '<h1 id="title">Hello</h1>\n<p id="msg">Before the edit.</p>\n<p id="other">Untouched.</p>',
    title="Home",
)


@pytest.mark.parametrize("write", [write_in_place, write_atomically], ids=["write-in-place", "atomic-replace"])
def test_body_text_edit_patches_without_navigation(server, driver, stream, write):
    put_files(server, stream, {"index.html": HOME})
    open_connected(driver, server, stream, "")  # `/`: the same page as /index.html
    assert driver.execute_script("return window.__beacon.page;") == "/"
    assert driver.execute_script("return window.__beacon.transport;") == "shared-worker"
    driver.execute_script("window.keepTitle = document.getElementById('title');")

    started = time.monotonic()
    write(server.site_dir / "index.html", HOME.replace("Before the edit.", "After the edit."))
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "After the edit.",
               "the page shows the edited paragraph")
    timed(f"body text edit ({write.__name__}) to DOM", started)

    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the page navigated instead of patching")
    wait_until(driver, server, stream, "return window.__beacon.applied.some(a => a.type === 'patched');",
               "the client noted the patch")
    assert applied_types(driver) == ["patched"]
    assert driver.execute_script("return document.getElementById('title') === window.keepTitle;"), \
        "the unchanged <h1> was replaced"
    assert text_of(driver, "other") == "Untouched."


def test_scroll_position_kept(server, driver, stream):
    paragraphs = "\n".join(f'<p id="p{i}">Paragraph {i:03d}</p>' for i in range(300))
    html = page(paragraphs, title="Long")
    put_files(server, stream, {"long.html": html})
    open_connected(driver, server, stream, "long.html")
    driver.execute_script("window.scrollTo(0, 2000);")
    wait_until(driver, server, stream, "return Math.abs(window.scrollY - 2000) <= 1;", "the page is scrolled to y=2000")

    write_atomically(server.site_dir / "long.html", html.replace("Paragraph 003", "Paragraph three"))
    wait_until(driver, server, stream, lambda d: text_of(d, "p3") == "Paragraph three",
               "the paragraph near the top shows its new text")

    y = driver.execute_script("return window.scrollY;")
    check(driver, server, stream, abs(y - 2000) <= 1, f"the scroll position moved to {y} (was 2000)")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the page reloaded")


def test_typed_input_and_focus_kept(server, driver, stream):
    html = page('<form><label>Name <input id="name" name="name"></label></form>\n<p id="msg">one</p>', title="Form")
    put_files(server, stream, {"form.html": html})
    open_connected(driver, server, stream, "form.html")
    field = driver.find_element(By.ID, "name")
    field.click()
    field.send_keys("typed")
    assert driver.execute_script("return document.activeElement.id;") == "name"
    driver.execute_script("window.keepInput = document.getElementById('name');")

    write_atomically(server.site_dir / "form.html", html.replace('<p id="msg">one</p>', '<p id="msg">two</p>'))
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "two", "the edited paragraph shows 'two'")

    state = driver.execute_script(
        "const i = document.getElementById('name');"
        "return {value: i.value, focused: document.activeElement === i, same: i === window.keepInput};")
    check(driver, server, stream, state == {"value": "typed", "focused": True, "same": True},
          f"the input lost its typed value, its focus or its identity: {state}")
    assert driver.execute_script(MARKER_JS) == 42


KEEP_PAGE = page(
    '<ul id="list"><li id="a">A</li><li id="b">B</li><li id="c">C</li><li id="d">D</li></ul>\n'
    '<div id="keep"><p>kept <b>bold</b> text</p><span class="x">unchanged</span></div>\n'
    '<ol id="plain"><li>one</li><li>two</li></ol>',
    title="Keep",
)


def test_unchanged_nodes_keep_identity(server, driver, stream):
    put_files(server, stream, {"keep.html": KEEP_PAGE})
    open_connected(driver, server, stream, "keep.html")
    driver.execute_script("""
        window.keep = document.getElementById('keep');
        window.items = {a: document.getElementById('a'), b: document.getElementById('b'), c: document.getElementById('c')};
        window.keepMutations = [];
        new MutationObserver((records) => window.keepMutations.push(...records.map(r => r.type)))
          .observe(window.keep, {subtree: true, childList: true, attributes: true, characterData: true});
    """)

    # Remove D, add E, reorder: C A E B; append a third item to the plain list.
    edited = (KEEP_PAGE
              .replace('<li id="a">A</li><li id="b">B</li><li id="c">C</li><li id="d">D</li>',
                       '<li id="c">C</li><li id="a">A</li><li id="e">E</li><li id="b">B</li>')
              .replace("<li>two</li></ol>", "<li>two</li><li>three</li></ol>"))
    write_atomically(server.site_dir / "keep.html", edited)
    wait_until(driver, server, stream,
               "return [...document.querySelectorAll('#list li')].map(li => li.id).join() === 'c,a,e,b';",
               "the list shows C A E B")

    result = driver.execute_script("""
        return {
          list: document.getElementById('list').innerHTML,
          plain: document.getElementById('plain').innerHTML,
          keep: document.getElementById('keep') === window.keep,
          keepHTML: document.getElementById('keep').innerHTML,
          moved: ['a', 'b', 'c'].filter(id => document.getElementById(id) !== window.items[id]),
          mutations: window.keepMutations,
        };""")
    assert result["list"] == '<li id="c">C</li><li id="a">A</li><li id="e">E</li><li id="b">B</li>'
    assert result["plain"] == "<li>one</li><li>two</li><li>three</li>"
    check(driver, server, stream, result["keep"], "the unchanged #keep element was replaced by a new node")
    assert result["keepHTML"] == '<p>kept <b>bold</b> text</p><span class="x">unchanged</span>'
    check(driver, server, stream, result["moved"] == [], f"reordered items were recreated instead of moved: {result['moved']}")
    check(driver, server, stream, result["mutations"] == [], f"the unchanged subtree was mutated: {result['mutations']}")
    assert driver.execute_script(MARKER_JS) == 42


def test_title_change_updates_in_place(server, driver, stream):
    put_files(server, stream, {"index.html": HOME})
    open_connected(driver, server, stream, "index.html")  # page key `/`, like the edited index.html
    assert driver.title == "Home"

    write_in_place(server.site_dir / "index.html", HOME.replace("<title>Home</title>", "<title>Renamed</title>"))
    wait_until(driver, server, stream, "return document.title === 'Renamed';", "document.title is 'Renamed'")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "a <title> change reloaded the page")
    wait_until(driver, server, stream, "return window.__beacon.applied.some(a => a.type === 'patched');",
               "the client noted the patch")


def test_head_change_reloads(server, driver, stream):
    put_files(server, stream, {"index.html": HOME})
    open_connected(driver, server, stream)

    write_atomically(server.site_dir / "index.html",
                     HOME.replace("<title>Home</title>", '<title>Home</title>\n<meta name="x" content="y">'))
    wait_until(driver, server, stream, "return window.marker === undefined;", "the page reloads (window.marker is gone)")
    wait_until(driver, server, stream, "return document.querySelector('meta[name=x]')?.content === 'y';",
               "the reloaded page has <meta name=x content=y>")
    wait_until(driver, server, stream, CONNECTED_JS, "the live client is connected again")


def test_inline_script_change_reloads(server, driver, stream):
    html = page('<p id="msg">script</p>\n<script>window.inlineVersion = 1;</script>', title="Script")
    put_files(server, stream, {"script.html": html})
    open_connected(driver, server, stream, "script.html")
    assert driver.execute_script("return window.inlineVersion;") == 1

    write_atomically(server.site_dir / "script.html", html.replace("inlineVersion = 1", "inlineVersion = 2"))
    wait_until(driver, server, stream, "return window.marker === undefined;", "the page reloads (window.marker is gone)")
    wait_until(driver, server, stream, "return window.inlineVersion === 2;", "the new inline script ran")


# --- targeting: only the tabs that use the changed file act -----------------------------------

ABOUT = page('<h1 id="title">About</h1>\n<p id="msg">About, before.</p>', title="About")
HOME_WITH_LINK = HOME.replace('<p id="other">Untouched.</p>', '<p id="other"><a id="to-about" href="about.html">About</a></p>')


def test_edit_of_other_page_leaves_tab_untouched(server, driver, stream):
    put_files(server, stream, {"index.html": HOME_WITH_LINK, "about.html": ABOUT})
    home = open_connected(driver, server, stream, "")
    # The second tab follows the link from the home page, so about.html is requested with the home
    # page as its Referer: that must not make the home page a user of about.html.
    open_connected(driver, server, stream, "", new_tab=True)
    driver.find_element(By.ID, "to-about").click()
    wait_until(driver, server, stream, "return location.pathname === '/about.html' && " + CONNECTED_JS[7:],
               "the second tab followed the link to about.html and is connected")
    driver.execute_script("window.marker = 42;")
    about = driver.current_window_handle
    driver.switch_to.window(home)
    received_before = driver.execute_script("return window.__beacon.received;")

    driver.switch_to.window(about)
    write_atomically(server.site_dir / "about.html", ABOUT.replace("About, before.", "About, after."))
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "About, after.", "the about tab is patched")
    assert driver.execute_script(MARKER_JS) == 42

    driver.switch_to.window(home)
    # The shared stream hands every event to every tab: once the home tab counted it, it has decided.
    wait_until(driver, server, stream, f"return window.__beacon.received > {received_before};",
               "the home tab received the about.html event")
    check(driver, server, stream, applied_types(driver) == [], f"the home tab acted on it: {applied_types(driver)}")
    # A fence: an edit of the home page is patched once; a patch started for about.html would show as two.
    edit_and_wait_for_patch(driver, server, stream, server.site_dir / "index.html",
                            HOME_WITH_LINK.replace("Before the edit.", "Home, after."),
                            "the home tab is patched (fence)")
    assert text_of(driver, "msg") == "Home, after."
    check(driver, server, stream, applied_types(driver) == ["patched"] and driver.execute_script(MARKER_JS) == 42,
          f"the home tab reloaded or patched for about.html: applied {applied_types(driver)}")
    # Each page update the tab considers (with the HTML from the event, or fetched) counts once.
    checked = driver.execute_script("return window.__beacon.checked;")
    assert checked == 1, f"the home tab considered {checked} page updates (expected one, for its own edit)"
    # The server sent the edited page inside the event, so the tab did not fetch it.
    own_fetches = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch' && "
        "new URL(e.name).pathname === location.pathname).length;")
    assert own_fetches == 0, f"the home tab fetched itself {own_fetches} times although the event carried the page"


IMPORT_PAGE = page('<h1 id="title">Styled</h1>\n<p id="msg">styled</p>',
                   title="Styled", head='<link rel="stylesheet" href="a.css">\n')


def test_imported_stylesheet_swapped_in_place(server, driver, stream):
    put_files(server, stream, {
        "styled.html": IMPORT_PAGE,
        "a.css": '@import "b.css";\nbody { margin: 0; }\n',
        "b.css": "#title { color: rgb(255, 0, 0); }\n",
        "plain.html": ABOUT,
    })
    styled = open_connected(driver, server, stream, "styled.html")
    assert driver.execute_script("return getComputedStyle(document.getElementById('title')).color;") == "rgb(255, 0, 0)"
    plain = open_connected(driver, server, stream, "plain.html", new_tab=True)
    plain_received = driver.execute_script("return window.__beacon.received;")

    driver.switch_to.window(styled)
    started = time.monotonic()
    write_atomically(server.site_dir / "b.css", "#title { color: rgb(0, 0, 255); }\n")
    wait_until(driver, server, stream,
               "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 0, 255)';",
               "the edited b.css (imported by a.css) applies: #title is blue")
    timed("imported stylesheet edit to computed style", started)
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "a stylesheet edit reloaded the page")
    assert "css" in applied_types(driver)
    assert "patched" not in applied_types(driver)
    wait_until(driver, server, stream,
               "return document.querySelectorAll('link[rel~=\"stylesheet\"]').length === 1;",
               "the old a.css link is removed once the new one loaded")
    # Again: the link is now a.css?beacon=..., and b.css was last asked for by that URL.
    write_in_place(server.site_dir / "b.css", "#title { color: rgb(0, 128, 0); }\n")
    wait_until(driver, server, stream,
               "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 128, 0)';",
               "a second edit of b.css applies: #title is green")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the second stylesheet edit reloaded the page")
    assert applied_types(driver) == ["css", "css"]

    driver.switch_to.window(plain)
    wait_until(driver, server, stream, f"return window.__beacon.received > {plain_received};",
               "the plain tab received the css event")
    check(driver, server, stream, applied_types(driver) == [] and driver.execute_script(MARKER_JS) == 42,
          f"the tab on a page without a.css/b.css acted on the css event: {applied_types(driver)}")


PIC_RED = ('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
           '<rect width="20" height="20" fill="rgb(255,0,0)"/></svg>\n')
PIC_BLUE = PIC_RED.replace("rgb(255,0,0)", "rgb(0,0,255)")
# The <img>'s src and the colour of its middle pixel, for failure messages.
PICTURE_STATE_JS = ("return {src: document.getElementById('pic').getAttribute('src'), "
                    "pixel: (() => { %s })()};")
PIXEL_JS = """
const img = document.getElementById('pic');
if (!img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const ctx = canvas.getContext('2d');
ctx.drawImage(img, 0, 0);
return [...ctx.getImageData(10, 10, 1, 1).data.slice(0, 3)];
"""
PICTURE_STATE_JS = PICTURE_STATE_JS % PIXEL_JS


def test_image_refreshed_in_place(server, driver, stream):
    put_files(server, stream, {
        "pic.svg": PIC_RED,
        "img.css": "#bg { width: 20px; height: 20px; background-image: url(pic.svg); }\n",
        "gallery.html": page('<img id="pic" src="pic.svg" alt="">\n<div id="bg"></div>\n'
                             '<img id="set" srcset="pic.svg 1x" alt="">\n'
                             '<div id="inline" style="width: 20px; height: 20px; background-image: url(pic.svg)"></div>',
                             title="Gallery",
                             head='<link rel="stylesheet" href="img.css">\n'),
    })
    open_connected(driver, server, stream, "gallery.html")
    wait_until(driver, server, stream, PIXEL_JS, "the picture loaded")
    assert driver.execute_script(PIXEL_JS) == [255, 0, 0]

    started = time.monotonic()
    write_atomically(server.site_dir / "pic.svg", PIC_BLUE)
    wait_until(driver, server, stream,
               "return document.getElementById('pic').getAttribute('src').includes('beacon=');",
               "the <img> src gains a beacon= query")
    wait_until(driver, server, stream, lambda d: d.execute_script(PIXEL_JS) == [0, 0, 255],
               "the <img> shows the new (blue) picture", show=PICTURE_STATE_JS)
    timed("image edit to new pixels", started)
    wait_until(driver, server, stream,
               "return getComputedStyle(document.getElementById('bg')).backgroundImage.includes('beacon=');",
               "the stylesheet's background-image url() gains a beacon= query")
    wait_until(driver, server, stream,
               "return document.getElementById('set').getAttribute('srcset').includes('beacon=') && "
               "document.getElementById('inline').style.backgroundImage.includes('beacon=');",
               "the srcset and the inline style's url() gain a beacon= query")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "an image edit reloaded the page")
    assert "image" in applied_types(driver)
    assert "patched" not in applied_types(driver)


def test_image_edit_survives_a_later_html_edit(server, driver, stream):
    html = page('<img id="pic" src="pic.svg" alt="">\n<p id="msg">v1</p>', title="Gallery")
    put_files(server, stream, {"pic.svg": PIC_RED, "gallery.html": html})
    open_connected(driver, server, stream, "gallery.html")
    wait_until(driver, server, stream, PIXEL_JS, "the picture loaded")
    write_atomically(server.site_dir / "pic.svg", PIC_BLUE)
    wait_until(driver, server, stream, lambda d: d.execute_script(PIXEL_JS) == [0, 0, 255],
               "the <img> shows the new (blue) picture", show=PICTURE_STATE_JS)

    # Then an edit of the page's text, elsewhere: the picture must stay the new one.
    write_atomically(server.site_dir / "gallery.html", html.replace(">v1<", ">v2<"))
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "v2", "the edited text is patched in")
    wait_until(driver, server, stream, lambda d: d.execute_script(PIXEL_JS) == [0, 0, 255],
               "the <img> still shows the blue picture (pic.svg on disk) after the text edit",
               show=PICTURE_STATE_JS)
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the page reloaded")


def test_script_edit_reloads_only_pages_using_it(server, driver, stream):
    put_files(server, stream, {
        "a.js": "window.aVersion = 1;\n",
        "page-a.html": page('<p id="msg">A</p>\n<script src="a.js"></script>', title="A"),
        "page-b.html": page('<p id="msg">B</p>', title="B"),
    })
    tab_a = open_connected(driver, server, stream, "page-a.html")
    assert driver.execute_script("return window.aVersion;") == 1
    tab_b = open_connected(driver, server, stream, "page-b.html", new_tab=True)
    received_b = driver.execute_script("return window.__beacon.received;")

    driver.switch_to.window(tab_a)
    write_atomically(server.site_dir / "a.js", "window.aVersion = 2;\n")
    wait_until(driver, server, stream, "return window.marker === undefined;", "tab A reloads")
    wait_until(driver, server, stream, "return window.aVersion === 2;", "tab A ran the new a.js")

    driver.switch_to.window(tab_b)
    wait_until(driver, server, stream, f"return window.__beacon.received > {received_b};",
               "tab B received the reload event")
    # A fence: tab B still patches an edit of its own page, and kept its marker.
    edit_and_wait_for_patch(driver, server, stream, server.site_dir / "page-b.html",
                            page('<p id="msg">B2</p>', title="B"), "tab B is patched (fence)")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42,
          "tab B reloaded although its page does not use a.js")
    assert applied_types(driver) == ["patched"]


# --- bursts: one action per page, the highest ------------------------------------------------

# The inline counter script stays the same in every version of the page: editing it would be a script change.
BURST_PAGE = page(
    '<h1 id="title">v1</h1>\n'
    "<script>sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);</script>\n"
    '<script src="burst.js"></script>',
    title="Burst", head='<link rel="stylesheet" href="burst.css">\n')

RECORD_BEFORE_RELOAD_JS = """
for (const type of ['patched', 'css', 'image']) {
  document.addEventListener('beacon:' + type, () => {
    sessionStorage.appliedBeforeReload = (sessionStorage.appliedBeforeReload || '') + type + ' ';
  });
}
"""


def test_burst_with_a_script_change_reloads_once(server, driver, stream):
    put_files(server, stream, {
        "burst.css": "#title { color: rgb(255, 0, 0); }\n",
        "burst.js": "window.burstVersion = 1;\n",
        "burst.html": BURST_PAGE,
    })
    open_connected(driver, server, stream, "burst.html")
    assert driver.execute_script("return sessionStorage.loads;") == "1"
    driver.execute_script(RECORD_BEFORE_RELOAD_JS)
    before = stream.count()

    # One burst, well inside the 20 ms debounce: a stylesheet, the page's body, and its script.
    write_in_place(server.site_dir / "burst.css", "#title { color: rgb(0, 0, 255); }\n")
    write_in_place(server.site_dir / "burst.html", BURST_PAGE.replace(">v1<", ">v2<"))
    write_in_place(server.site_dir / "burst.js", "window.burstVersion = 2;\n")

    wait_until(driver, server, stream, "return window.marker === undefined && window.burstVersion === 2;",
               "the page reloads and runs the new burst.js")
    wait_until(driver, server, stream, CONNECTED_JS, "the live client is connected again")
    state = driver.execute_script("""return {
        title: document.getElementById('title').textContent,
        color: getComputedStyle(document.getElementById('title')).color,
        applied: sessionStorage.appliedBeforeReload || ''};""")
    assert state["title"] == "v2" and state["color"] == "rgb(0, 0, 255)", state
    # The burst's first change, the stylesheet, went out at once (the leading edge): the page may
    # have swapped it before the one reload, and nothing else.
    check(driver, server, stream, state["applied"].strip() in ("", "css"),
          f"the page applied {state['applied']!r} before reloading (at most the leading stylesheet swap)")

    # A fence: a later edit is patched in place; a second reload from the burst would lose it or count a load.
    driver.execute_script("window.marker = 42;")
    edit_and_wait_for_patch(driver, server, stream, server.site_dir / "burst.html",
                            BURST_PAGE.replace(">v1<", ">v3<"), "a later edit is patched (fence)")
    loads = driver.execute_script("return sessionStorage.loads;")
    check(driver, server, stream, loads == "2" and driver.execute_script(MARKER_JS) == 42,
          f"the burst reloaded the page more than once (sessionStorage.loads = {loads})")
    pushed = [(name, data.get("pages")) for _, name, data in stream.since(before)]
    assert [p for p in pushed if p[0] != "css"] == [("reload", ["/burst.html"]), ("fragment", ["/burst.html"])], \
        f"expected one reload for the burst (after at most its leading stylesheet), then the fence's fragment: {pushed}"
    assert [name for name, _ in pushed].count("css") <= 1, pushed


SHEETS = 50
MANY_PAGE = page(
    "\n".join(f'<div id="c{i}" class="c">{i}</div>' for i in range(SHEETS)) + '\n<p id="msg">v1</p>',
    title="Many sheets",
    head="".join(f'<link rel="stylesheet" href="css/s{i:02d}.css">\n' for i in range(SHEETS)),
)


def sheet(i: int, width: int) -> str:
    return f"#c{i} {{ width: {width}px; }}\n"


def css_and_html_burst(server, driver, stream):
    """Opens many.html (50 linked sheets), then writes all 50 sheets and the page's body in one burst."""
    files = {f"css/s{i:02d}.css": sheet(i, 10 + i) for i in range(SHEETS)}
    files["many.html"] = MANY_PAGE
    put_files(server, stream, files)
    open_connected(driver, server, stream, "many.html")
    assert driver.execute_script("return getComputedStyle(document.getElementById('c7')).width;") == "17px"

    before = stream.count()
    for i in range(SHEETS):
        write_in_place(server.site_dir / f"css/s{i:02d}.css", sheet(i, 100 + i))
    write_in_place(server.site_dir / "many.html", MANY_PAGE.replace('<p id="msg">v1</p>', '<p id="msg">v2</p>'))
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "v2", "the page shows the edited body")
    return before


def test_burst_of_css_and_html_patches_once(server, driver, stream):
    before = css_and_html_burst(server, driver, stream)
    # A fence: a later edit of the page; once it is patched, every action of the burst has been taken.
    edit_and_wait_for_patch(driver, server, stream, server.site_dir / "many.html",
                            MANY_PAGE.replace('<p id="msg">v1</p>', '<p id="msg">v3</p>'),
                            "a later edit is patched (fence)")
    types = applied_types(driver)
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the burst reloaded the page")
    # The burst's stylesheet swaps ride along with its one patch (see the next test), so only
    # patches are counted here.
    patches = [t for t in types if t != "css"]
    check(driver, server, stream, patches == ["patched", "patched"],
          f"expected one patch for the burst and one for the fence, got {types}")
    pushed = [(name, data.get("pages")) for _, name, data in stream.since(before)]
    # The burst's first stylesheet leads alone; the rest is one batch with one action.
    assert pushed[1:] == [("fragment", ["/many.html"])] * 2 and pushed[0][0] == "css", \
        f"the burst was not its leading stylesheet, then one batch with one action: {pushed}"


def test_burst_of_css_and_html_shows_both(server, driver, stream):
    css_and_html_burst(server, driver, stream)
    wait_until(driver, server, stream,
               "return getComputedStyle(document.getElementById('c7')).width === '107px';",
               "the burst's stylesheet edits apply too (#c7 is 107px wide)",
               show="return {c7: getComputedStyle(document.getElementById('c7')).width, "
                    "applied: window.__beacon.applied.map(a => a.type), "
                    "link: document.querySelector('link[href*=\"s07\"]').getAttribute('href')};")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the burst reloaded the page")


# --- pages that appear and disappear ---------------------------------------------------------


def test_404_page_becomes_the_created_page(server, driver, stream):
    open_connected(driver, server, stream, "later.html")
    assert "404" in driver.find_element(By.TAG_NAME, "h1").text

    write_atomically(server.site_dir / "later.html", page('<h1>Later</h1>\n<p id="msg">created</p>', title="Later"))
    wait_until(driver, server, stream, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Later",
               "the created later.html replaces the 404 page")
    assert text_of(driver, "msg") == "created"
    assert driver.title == "Later"
    wait_until(driver, server, stream, CONNECTED_JS, "the live client is connected on the new page")


def test_deleted_page_shows_404(server, driver, stream):
    put_files(server, stream, {"doomed.html": page('<h1>Doomed</h1>', title="Doomed")})
    open_connected(driver, server, stream, "doomed.html")

    os.unlink(server.site_dir / "doomed.html")
    wait_until(driver, server, stream, lambda d: "404" in d.find_element(By.TAG_NAME, "h1").text,
               "the deleted page shows the 404 page")
    assert driver.execute_script("return window.marker;") is None

    # Saved again: the 404 page turns back into the page.
    wait_until(driver, server, stream, CONNECTED_JS, "the live client on the 404 page is connected")
    write_in_place(server.site_dir / "doomed.html", page('<h1>Restored</h1>', title="Restored"))
    wait_until(driver, server, stream, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Restored",
               "the restored page replaces the 404 page")


def test_folder_index_is_one_page(server, driver, stream):
    html = page('<p id="msg">docs v1</p>', title="Docs")
    put_files(server, stream, {"docs/index.html": html})
    tabs = [open_connected(driver, server, stream, "docs/"),
            open_connected(driver, server, stream, "docs/index.html", new_tab=True)]
    for tab in tabs:
        driver.switch_to.window(tab)
        assert driver.execute_script("return window.__beacon.page;") == "/docs/"

    write_atomically(server.site_dir / "docs" / "index.html", html.replace("docs v1", "docs v2"))
    for tab, path in zip(tabs, ["/docs/", "/docs/index.html"]):
        driver.switch_to.window(tab)
        wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "docs v2", f"the tab on {path} is patched")
        check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, f"the tab on {path} reloaded")


def test_file_no_page_uses_reloads_every_page(server, driver, stream):
    put_files(server, stream, {"index.html": HOME, "about.html": ABOUT})
    tabs = [open_connected(driver, server, stream, ""), open_connected(driver, server, stream, "about.html", new_tab=True)]

    write_atomically(server.site_dir / "data.json", '{"later": true}\n')  # fetched by no page (yet)
    for tab, path in zip(tabs, ["/", "/about.html"]):
        driver.switch_to.window(tab)
        wait_until(driver, server, stream, "return window.marker === undefined;", f"the tab on {path} reloads")


# --- many tabs, one stream -------------------------------------------------------------------

TABS = 12


def test_twelve_tabs_share_one_stream(server, driver, stream):
    put_files(server, stream, {"index.html": HOME, "style.css": "body { margin: 0; }\n"})
    handles = []
    started = time.monotonic()
    for i in range(TABS):
        handles.append(open_connected(driver, server, stream, "", new_tab=i > 0))
        transport = driver.execute_script("return window.__beacon.transport;")
        check(driver, server, stream, transport == "shared-worker", f"tab {i + 1} uses transport {transport!r}")
    timed(f"opening {TABS} connected tabs", started)
    # One event stream for the whole browser (its SharedWorker), plus this test's own reader.
    clients = status(server)["clients"]
    check(driver, server, stream, clients == 2, f"{TABS} tabs hold {clients - 1} event streams (expected 1)")

    started = time.monotonic()
    write_atomically(server.site_dir / "index.html", HOME.replace("Before the edit.", "All tabs."))
    for i, handle in enumerate(handles):
        driver.switch_to.window(handle)
        wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "All tabs.", f"tab {i + 1} is patched")
        check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, f"tab {i + 1} reloaded")
    timed(f"edit to all {TABS} tabs patched", started)

    # With 12 tabs open, the browser still has connections to spare: assets and a 13th page load fast.
    driver.switch_to.window(handles[-1])
    started = time.monotonic()
    statuses = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), %d));
        const fetches = Promise.all([...Array(8).keys()].map((i) =>
          fetch('/style.css?n=' + i, {cache: 'no-store'}).then((r) => r.status, (e) => String(e))));
        Promise.race([fetches, timeout]).then(done);
    """ % int(FAST * 1000))
    timed("8 parallel asset fetches with 12 tabs open", started)
    check(driver, server, stream, statuses == [200] * 8, f"asset fetches with {TABS} tabs open: {statuses}")

    started = time.monotonic()
    open_connected(driver, server, stream, "", new_tab=True)
    elapsed = time.monotonic() - started
    timed("13th tab navigation to connected", started)
    check(driver, server, stream, elapsed < FAST, f"a 13th tab took {elapsed:.1f} s to load and connect")
    assert driver.execute_script("return window.__beacon.transport;") == "shared-worker"


# --- an editor mid-save ----------------------------------------------------------------------

HALF_PAGE = page('<p id="msg">v1</p>\n<footer id="tail">end</footer>', title="Half")


def test_half_written_file_is_ignored_until_complete(server, driver, stream):
    put_files(server, stream, {"half.html": HALF_PAGE})
    open_connected(driver, server, stream, "half.html")
    driver.execute_script("""
        window.removed = [];
        new MutationObserver((records) => { for (const r of records)
          for (const n of r.removedNodes) if (n.id) window.removed.push(n.id); })
          .observe(document.body, {childList: true, subtree: true});
    """)
    received = driver.execute_script("return window.__beacon.received;")

    full = HALF_PAGE.replace(">v1<", ">v2<")
    first_half = full[: full.index("<footer")]  # has <html and <body, no </body> or </html>
    assert "<body" in first_half and "</body>" not in first_half and "</html>" not in first_half
    write_in_place(server.site_dir / "half.html", first_half)
    wait_until(driver, server, stream, f"return window.__beacon.received > {received};",
               "the tab received the event for the half-written file")
    wait_until(driver, server, stream, "return window.__beacon.checked >= 1;",
               "the tab considered the half-written page")
    state = driver.execute_script(
        "return {msg: document.getElementById('msg').textContent, tail: !!document.getElementById('tail'), "
        "applied: window.__beacon.applied.map(a => a.type), marker: window.marker};")
    check(driver, server, stream, state == {"msg": "v1", "tail": True, "applied": [], "marker": 42},
          f"the half-written file was applied: {state}")

    write_in_place(server.site_dir / "half.html", full)
    wait_until(driver, server, stream, lambda d: text_of(d, "msg") == "v2", "the completed file is patched in")
    state = driver.execute_script(
        "return {tail: !!document.getElementById('tail'), removed: window.removed, "
        "applied: window.__beacon.applied.map(a => a.type), marker: window.marker};")
    check(driver, server, stream, state == {"tail": True, "removed": [], "applied": ["patched"], "marker": 42},
          f"after the complete save: {state}")


# --- stylesheet text sent with the event -----------------------------------------------------

SHEET_PAGE = page('<h1 id="title">Sheet</h1>\n<p id="msg">styled</p>', title="Sheet",
                  head='<link rel="stylesheet" href="css/site.css">\n')
COLOR_JS = "return getComputedStyle(document.getElementById('title')).color;"
LINKS_JS = "return [...document.querySelectorAll('link[rel~=\"stylesheet\"]')].map(l => l.getAttribute('href'));"
SETTLED_STATE_JS = ("return [getComputedStyle(document.getElementById('title')).color, "
                    "document.querySelectorAll('style[data-beacon-interim]').length, "
                    "[...document.querySelectorAll('link')].map(l => l.getAttribute('href'))];")


def wait_settled(driver, server, stream, colour: str, what: str) -> None:
    """Waits until #title shows `colour` from one stylesheet link, no interim <style> left."""
    wait_until(driver, server, stream,
               f"return getComputedStyle(document.getElementById('title')).color === '{colour}'"
               " && document.querySelectorAll('style[data-beacon-interim]').length === 0"
               " && document.querySelectorAll('link[rel~=\"stylesheet\"]').length === 1;",
               what, show=SETTLED_STATE_JS)


def css_events(stream, since: int) -> list:
    return [data for _, name, data in stream.since(since) if name == "css"]


def test_stylesheet_text_travels_with_its_event_and_applies_before_the_new_link_loads(server, driver, stream):
    put_files(server, stream, {
        "css/img/dot.png": "(only its URL matters)",
        "sheet.html": SHEET_PAGE,
        "css/site.css": "#title { color: rgb(255, 0, 0); }\n",
        "css/extra.css": "#msg { color: rgb(0, 0, 7); }\n",
    })
    open_connected(driver, server, stream, "sheet.html")
    assert driver.execute_script(COLOR_JS) == "rgb(255, 0, 0)"
    # The swapped-in link never loads: what shows is what the event carried.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*beacon=*"]})

    edited = ('@import "extra.css";\n/* url(not-a-file.png) */\n'
              '#title { color: rgb(0, 0, 255); background-image: url(img/dot.png); }\n'
              '#msg::after { content: "url(kept.png)"; }\n')
    before = stream.count()
    write_atomically(server.site_dir / "css" / "site.css", edited)
    events = stream.wait_for(lambda _: css_events(stream, before), "a css event for css/site.css")
    check(driver, server, stream, events[0].get("texts") == {"/css/site.css": edited},
          f"the css event carries the file exactly as served: {events[0]!r}")
    wait_until(driver, server, stream, "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 0, 255)';",
               "the new colour applies although the new link was refused", show=COLOR_JS)
    origin = server.url("").rstrip("/")
    state = driver.execute_script(
        "const t = getComputedStyle(document.getElementById('title')), m = getComputedStyle(document.getElementById('msg'), '::after');"
        "return [t.backgroundImage, getComputedStyle(document.getElementById('msg')).color, m.content];")
    # Relative URLs mean what they meant in the file: against the sheet's URL, not the page's.
    check(driver, server, stream, state[0] == f'url("{origin}/css/img/dot.png")', f"background-image: {state[0]!r}")
    wait_until(driver, server, stream, "return getComputedStyle(document.getElementById('msg')).color === 'rgb(0, 0, 7)';",
               "the @import, resolved against the sheet, applies", show="return getComputedStyle(document.getElementById('msg')).color;")
    check(driver, server, stream, state[2] == '"url(kept.png)"', f"a string that only looks like a URL is kept: {state[2]!r}")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "a stylesheet edit reloaded the page")
    assert "css" in applied_types(driver)

    # Unblocked: the next edit's link loads and replaces the interim <style>, which goes.
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    write_atomically(server.site_dir / "css" / "site.css", "#title { color: rgb(0, 128, 0); }\n")
    wait_settled(driver, server, stream, "rgb(0, 128, 0)",
                 "the second edit applies, then its link takes over from the <style>")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "the second stylesheet edit reloaded the page")


def test_rapid_stylesheet_edits_leave_the_last_text_and_one_link(server, driver, stream):
    put_files(server, stream, {"sheet.html": SHEET_PAGE, "css/site.css": "#title { color: rgb(255, 0, 0); }\n"})
    open_connected(driver, server, stream, "sheet.html")
    for n in range(1, 6):
        before = stream.count()
        write_in_place(server.site_dir / "css" / "site.css", f"#title {{ color: rgb({n}, 0, 0); }}\n")
        stream.wait_for(lambda _: css_events(stream, before), f"the css event of edit {n}")
    wait_settled(driver, server, stream, "rgb(5, 0, 0)", "the last edit shows, with one link and no <style> left over")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "a stylesheet edit reloaded the page")


CSP_SHEET_PAGE = page('<h1 id="title">Sheet</h1>', title="Strict", head=(
    '<meta http-equiv="Content-Security-Policy" content="style-src \'self\'">\n'
    '<link rel="stylesheet" href="css/site.css">\n'))


def test_a_page_whose_csp_refuses_inline_styles_swaps_the_link_as_before(server, driver, stream):
    put_files(server, stream, {"strict.html": CSP_SHEET_PAGE, "css/site.css": "#title { color: rgb(255, 0, 0); }\n"})
    open_connected(driver, server, stream, "strict.html")
    assert driver.execute_script(COLOR_JS) == "rgb(255, 0, 0)"
    write_atomically(server.site_dir / "css" / "site.css", "#title { color: rgb(0, 0, 255); }\n")
    wait_until(driver, server, stream,
               "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 0, 255)'"
               " && document.querySelectorAll('link[rel~=\"stylesheet\"]').length === 1;",
               "the new link applies the edit", show=LINKS_JS)
    check(driver, server, stream, driver.execute_script("return document.querySelectorAll('style').length;") == 0,
          "a <style> the page's CSP refuses was left in the page")
    check(driver, server, stream, driver.execute_script(MARKER_JS) == 42, "a stylesheet edit reloaded the page")


def test_a_stylesheet_that_is_not_utf8_or_too_big_goes_without_its_text(server, driver, stream):
    put_files(server, stream, {"sheet.html": SHEET_PAGE, "css/site.css": "#title { color: rgb(255, 0, 0); }\n"})
    open_connected(driver, server, stream, "sheet.html")
    before = stream.count()
    (server.site_dir / "css" / "site.css").write_bytes(b"#title { color: rgb(0, 0, 255); } /* \xff\xfe */\n")
    events = stream.wait_for(lambda _: css_events(stream, before), "a css event for the Latin-1 sheet")
    check(driver, server, stream, "texts" not in events[0], f"invalid UTF-8 travelled: {events[0]!r}")
    wait_until(driver, server, stream, "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 0, 255)';",
               "the link swap applies it", show=COLOR_JS)
    before = stream.count()
    big = "#title { color: rgb(0, 128, 0); }\n" + "/* filler */\n" * 12000  # ~156 KB
    write_atomically(server.site_dir / "css" / "site.css", big)
    events = stream.wait_for(lambda _: css_events(stream, before), "a css event for the big sheet")
    check(driver, server, stream, "texts" not in events[0], "a 156 KB sheet travelled in the event")
    wait_until(driver, server, stream, "return getComputedStyle(document.getElementById('title')).color === 'rgb(0, 128, 0)';",
               "the link swap applies it", show=COLOR_JS)
