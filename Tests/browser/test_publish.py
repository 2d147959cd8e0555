"""The publish API, end to end: `POST /__beacon/publish` and `beacon publish` into real pages.

A real `beacon serve`, a real headless Chromium (the independent SSE parser and DOM), real HTTP
from urllib and real runs of the CLI. Every wait is bounded; failures show the browser console
and the server's log.
"""

import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pytest
from helpers import CONNECTED_JS, wait_until
from selenium.webdriver.common.by import By

HTTP_TIMEOUT = 10.0  # seconds for one urllib request
CLI_TIMEOUT = 20.0  # seconds for one run of `beacon publish`

EVENT_ID = re.compile(r"^\d+-\d+$")

# Never route 127.0.0.1 through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Served from the site copy. No whitespace inside #main and #multi, so innerHTML compares exactly.
FRAGMENTS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fragments</title></head>
<body>
<h1>Fragments</h1>
<main id="main"><div id="box"><span class="k">keep</span></div></main>
<ul id="multi"><li class="item">one</li><li class="item">two</li></ul>
</body>
</html>
"""
BOX = '<div id="box"><span class="k">keep</span></div>'

# Records every `beacon:fragment` the client dispatches, in order.
RECORD_FRAGMENTS_JS = """
window.__fragments = [];
document.addEventListener('beacon:fragment', (e) => window.__fragments.push(e.detail));
"""


# --- helpers ---------------------------------------------------------------------------------


def open_connected(driver, server, path: str = "") -> None:
    """Opens `path`, waits for the live client's hello, sets window.marker = 42, records fragments."""
    driver.get(server.url(path))
    wait_until(driver, server, CONNECTED_JS, f"the live client on /{path} is connected")
    driver.execute_script("window.marker = 42;" + RECORD_FRAGMENTS_JS)
    assert driver.execute_script("return window.marker;") == 42


def request(server, path: str, body: bytes = None, content_type: str = None, headers: dict = None,
            method: str = "POST"):
    """One HTTP request to the server; returns (status, headers, body bytes), errors included."""
    req = urllib.request.Request(server.url(path), data=body, method=method)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with OPENER.open(req, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def publish(server, payload, form: bool = False, headers: dict = None) -> str:
    """POSTs one event (JSON, or form-encoded with form=True); expects 202 {"id"}; returns the id."""
    if form:
        body, content_type = urllib.parse.urlencode(payload).encode("utf-8"), "application/x-www-form-urlencoded"
    elif isinstance(payload, (bytes, str)):
        body, content_type = payload if isinstance(payload, bytes) else payload.encode("utf-8"), "application/json"
    else:
        body, content_type = json.dumps(payload).encode("utf-8"), "application/json"
    status, response_headers, reply = request(server, "__beacon/publish", body, content_type, headers)
    assert status == 202, (
        f"POST /__beacon/publish {content_type} {body!r} answered {status}: {reply!r}\n{server.log()}")
    assert response_headers.get_content_type() == "application/json", response_headers.get("Content-Type")
    event_id = json.loads(reply)["id"]
    assert EVENT_ID.match(event_id), f"the accepted id {event_id!r} is not <epoch>-<sequence>"
    return event_id


def status(server) -> dict:
    code, _, body = request(server, "__beacon/status", method="GET")
    assert code == 200, f"GET /__beacon/status answered {code}: {body!r}"
    return json.loads(body)


def beacon_publish(server, *args) -> str:
    """Runs `beacon publish --url <server> ARGS...`; expects exit 0; returns its stdout."""
    command = [server.process.args[0], "publish", "--url", server.base_url.rstrip("/"), *args]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{command} did not finish within {CLI_TIMEOUT:.0f} s (stderr: {error.stderr!r})\n{server.log()}",
                    pytrace=False)
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}\nstdout: {done.stdout!r}\nstderr: {done.stderr!r}\n{server.log()}")
    return done.stdout


def add_page_before_opening(driver, server, name: str, html: str) -> None:
    """Puts a page into the served site and waits until the server has announced the change.

    Adding a file makes the server broadcast a `reload`; a page opened before that broadcast would
    reload under the test. The file is renamed into place (one watcher event, so one broadcast),
    and the test waits for that broadcast before it opens anything.
    """
    before = status(server)["eventsPublished"]
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=server.site_dir)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.replace(temp, server.site_dir / name)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    wait_until(driver, server, lambda _: status(server)["eventsPublished"] > before,
               f"the server announced the new {name} (eventsPublished > {before})")


def fragments(driver) -> list:
    return driver.execute_script("return window.__fragments;")


def wait_for_fragments(driver, server, count: int, what: str) -> list:
    wait_until(driver, server, f"return window.__fragments.length >= {count};", what)
    return fragments(driver)


def html_of(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').innerHTML;")


def assert_not_reloaded(driver) -> None:
    assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of patching the DOM"


# --- fragments over HTTP -------------------------------------------------------------------------

SWAPS = [
    # id, fragment data, #main's innerHTML afterwards, whether the original <span class=k> is still the same node
    ("inner", {"selector": "#box", "html": "<b>new</b>", "swap": "inner"},
     '<div id="box"><b>new</b></div>', False),
    ("inner-by-default", {"selector": "#box", "html": "<b>new</b>"},
     '<div id="box"><b>new</b></div>', False),
    ("outer", {"selector": "#box", "html": '<section id="box2">out</section>', "swap": "outer"},
     '<section id="box2">out</section>', False),
    ("append", {"selector": "#box", "html": "<i>end</i>", "swap": "append"},
     '<div id="box"><span class="k">keep</span><i>end</i></div>', True),
    ("prepend", {"selector": "#box", "html": "<i>start</i>", "swap": "prepend"},
     '<div id="box"><i>start</i><span class="k">keep</span></div>', True),
    ("remove", {"selector": "#box", "swap": "remove"}, "", False),
]


@pytest.mark.parametrize("data,expected,keeps_node", [s[1:] for s in SWAPS], ids=[s[0] for s in SWAPS])
def test_fragment_swap_modes(server, driver, data, expected, keeps_node):
    add_page_before_opening(driver, server, "fragments.html", FRAGMENTS_PAGE)
    open_connected(driver, server, "fragments.html")
    assert html_of(driver, "main") == BOX
    driver.execute_script("window.keepNode = document.querySelector('#box .k');")

    publish(server, {"event": "fragment", "data": data})

    details = wait_for_fragments(driver, server, 1, f"the page applied the {data.get('swap', 'default')} fragment")
    assert details == [{"selector": "#box", "swap": data.get("swap", "inner"), "count": 1}]
    assert html_of(driver, "main") == expected
    assert_not_reloaded(driver)
    same_node = driver.execute_script("return document.querySelector('#box .k') === window.keepNode;")
    assert same_node is keeps_node, (
        "append/prepend must leave the existing children in place; the others replace them")
    # The rest of the page is untouched.
    assert html_of(driver, "multi") == '<li class="item">one</li><li class="item">two</li>'


def test_fragment_patches_every_match_and_pretty_json(server, driver):
    add_page_before_opening(driver, server, "fragments.html", FRAGMENTS_PAGE)
    open_connected(driver, server, "fragments.html")

    # A body written by hand (curl -d @file.json): data is a multi-line JSON object, sent raw.
    body = json.dumps({"event": "fragment", "data": {"selector": "#multi .item", "html": "x<br>y", "swap": "inner"}},
                      indent=2)
    publish(server, body)

    details = wait_for_fragments(driver, server, 1, "the page applied the fragment to both .item elements")
    assert details == [{"selector": "#multi .item", "swap": "inner", "count": 2}]
    assert html_of(driver, "multi") == '<li class="item">x<br>y</li><li class="item">x<br>y</li>'
    assert html_of(driver, "main") == BOX
    assert_not_reloaded(driver)


def test_patch_is_the_published_fragment_by_its_own_name(server, driver):
    """`patch` (0.2) does what `fragment` did; the page fires `beacon:patch`, and `beacon:fragment` for one more release."""
    add_page_before_opening(driver, server, "fragments.html", FRAGMENTS_PAGE)
    open_connected(driver, server, "fragments.html")
    driver.execute_script("window.__patches = []; document.addEventListener('beacon:patch', (e) => window.__patches.push(e.detail));")

    publish(server, {"event": "patch", "data": {"selector": "#box", "html": "<i>typed</i>", "swap": "append"}})

    details = wait_for_fragments(driver, server, 1, "the page applied the patch")
    assert details == [{"selector": "#box", "swap": "append", "count": 1}]
    assert driver.execute_script("return window.__patches;") == details
    assert html_of(driver, "main") == '<div id="box"><span class="k">keep</span><i>typed</i></div>'
    assert_not_reloaded(driver)


def test_page_without_the_selector_ignores_the_fragment(server, driver):
    open_connected(driver, server, "demos/progress.html")  # no #clock here, and nothing else changes the DOM
    body_before = driver.execute_script("return document.body.innerHTML;")

    publish(server, {"event": "fragment", "data": {"selector": "#clock", "html": "<b>12:00</b>"}})

    details = wait_for_fragments(driver, server, 1, "the client handled the fragment (beacon:fragment)")
    assert details == [{"selector": "#clock", "swap": "inner", "count": 0}]
    assert driver.execute_script("return document.body.innerHTML;") == body_before
    assert_not_reloaded(driver)


def test_publish_id_is_idempotent(server, driver):
    add_page_before_opening(driver, server, "fragments.html", FRAGMENTS_PAGE)
    open_connected(driver, server, "fragments.html")

    tick1 = {"event": "fragment", "id": "tick-1", "data": {"selector": "#box", "html": "<i>1</i>", "swap": "append"}}
    first = publish(server, tick1)
    again = publish(server, tick1)  # a retry: accepted, same id, not published twice
    assert again == first
    second = publish(server, {"event": "fragment", "id": "tick-2",
                              "data": {"selector": "#box", "html": "<i>2</i>", "swap": "append"}})
    assert second != first

    # Events arrive in order on one stream: once tick-2 is applied, a duplicate tick-1 would have been too.
    wait_until(driver, server, "return document.querySelectorAll('#box i').length >= 2;",
               "both appends (tick-1, tick-2) were applied")
    assert html_of(driver, "main") == '<div id="box"><span class="k">keep</span><i>1</i><i>2</i></div>'
    assert len(fragments(driver)) == 2
    assert_not_reloaded(driver)


# --- the CLI and the demos -----------------------------------------------------------------------


def test_clock_demo_driven_by_the_cli(server, driver):
    open_connected(driver, server, "demos/clock.html")
    clock = driver.find_element(By.ID, "clock")
    assert clock.text != "12:34:56"

    out = beacon_publish(server, "--fragment", "#clock", "12:34:56")
    assert EVENT_ID.match(out.strip()), f"beacon publish printed {out!r}, not the event id"

    wait_until(driver, server, lambda d: d.find_element(By.ID, "clock").text == "12:34:56",
               "#clock shows 12:34:56")
    assert driver.find_element(By.ID, "clock").tag_name == "strong"  # inner swap: the element stays
    assert_not_reloaded(driver)

    beacon_publish(server, "--fragment", "#clock", "<b>12:34:57</b>")
    wait_until(driver, server, "return document.getElementById('clock').innerHTML === '<b>12:34:57</b>';",
               "#clock holds <b>12:34:57</b>")
    assert_not_reloaded(driver)


def test_progress_demo_outer_swap_from_the_cli(server, driver):
    open_connected(driver, server, "demos/progress.html")
    driver.execute_script("window.firstBar = document.getElementById('progress');")

    for value in (40, 100):
        beacon_publish(server, "--fragment", "#progress", "--swap", "outer",
                       f"<progress id=progress max=100 value={value}></progress>")
        beacon_publish(server, "--fragment", "#status", f"Step {value} of 100")
        wait_until(driver, server, lambda d: d.find_element(By.ID, "status").text == f"Step {value} of 100",
                   f"#status says Step {value} of 100")
        # Events arrive in order, so the bar (published first) is already replaced.
        assert driver.execute_script("return document.getElementById('progress').value;") == value
        assert driver.execute_script("return document.querySelectorAll('progress').length;") == 1
    assert driver.execute_script("return document.getElementById('progress') !== window.firstBar;")
    assert_not_reloaded(driver)


def chat_messages(driver) -> list:
    return driver.execute_script(
        "return [...document.querySelectorAll('#messages li')].map(li => li.textContent);")


def say(driver, text: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#chat input[name=data]")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#chat button").click()


def test_chat_demo_between_two_browsers_with_replay(server, driver, second_driver):
    alice, bob = driver, second_driver
    for browser in (alice, bob):
        open_connected(browser, server, "demos/chat.html")
        assert chat_messages(browser) == []

    first = "Hi Bob: 1+1 = 2 & <b>not bold</b> é"  # '+', '&', '<', non-ASCII through the form encoding
    say(alice, first)
    for browser, who in ((alice, "Alice"), (bob, "Bob")):
        wait_until(browser, server, lambda d: chat_messages(d) == [first], f"{who}'s list shows the message")
    wait_until(alice, server, "return document.querySelector('#chat input[name=data]').value === '';",
               "the chat form is cleared after sending")

    # Bob reloads: the chat stream asks for lastEventId=earliest, so the history comes back, once.
    bob.refresh()
    wait_until(bob, server, "return window.marker === undefined;", "Bob's page reloaded")
    wait_until(bob, server, CONNECTED_JS, "Bob's live client is connected again")
    wait_until(bob, server, lambda d: len(chat_messages(d)) >= 1, "Bob's reloaded page replays the history")

    # A second, live message: it follows any replayed copies on the same stream, so once it is
    # listed, a duplicate of the first would be listed too.
    second = "Hi Alice"
    say(bob, second)
    for browser, who in ((alice, "Alice"), (bob, "Bob")):
        wait_until(browser, server, lambda d: second in chat_messages(d), f"{who}'s list shows the second message")
        assert chat_messages(browser) == [first, second], f"{who}'s list"
    for browser in (alice, bob):
        assert browser.find_element(By.TAG_NAME, "h1").text == "Chat"
    assert_not_reloaded(alice)


# --- custom channels, named events, multi-line data -------------------------------------------

# Opens an EventSource on channel `news`; records `hello`, `headline`, plain `message` and `fragment` events.
OPEN_NEWS_JS = """
window.__news = { hello: false, headline: [], message: [], fragment: [] };
const source = new EventSource('/__beacon/events?channel=news');
source.addEventListener('hello', () => { window.__news.hello = true; });
for (const type of ['headline', 'message', 'fragment']) {
  source.addEventListener(type, (e) => window.__news[type].push({ data: e.data, id: e.lastEventId }));
}
window.__newsSource = source;
"""


def open_news(driver, server) -> None:
    driver.execute_script(OPEN_NEWS_JS)
    wait_until(driver, server, "return window.__news.hello === true;", "the EventSource on channel news said hello")


def test_form_encoded_named_event_on_a_custom_channel(server, driver):
    open_connected(driver, server)
    open_news(driver, server)

    # (sent, what the browser's SSE parser hands back): CR and CRLF come back as LF, the rest exactly.
    cases = [
        ("a\nb", "a\nb"),
        ("a\n\nb", "a\n\nb"),
        ("trailing\n", "trailing\n"),
        ("cr\rcrlf\r\nlf", "cr\ncrlf\nlf"),
        ("  two leading spaces", "  two leading spaces"),
        ("1+1=2 & 50% ünïcødé ✓ data: id: event:", "1+1=2 & 50% ünïcødé ✓ data: id: event:"),
    ]
    ids = [publish(server, {"channel": "news", "event": "headline", "data": sent}, form=True) for sent, _ in cases]
    plain = publish(server, {"channel": "news", "data": "no event name"}, form=True)

    wait_until(driver, server, "return window.__news.message.length >= 1;", "the plain message arrived")
    headlines = driver.execute_script("return window.__news.headline;")
    assert [h["data"] for h in headlines] == [expected for _, expected in cases]
    assert [h["id"] for h in headlines] == ids, "each event's SSE id is the id the publish answered"
    assert driver.execute_script("return window.__news.message;") == [{"data": "no event name", "id": plain}]
    # The page's own client listens to the default channel only: it saw none of this.
    assert fragments(driver) == []
    assert_not_reloaded(driver)


def test_channels_are_isolated(server, driver):
    open_connected(driver, server)
    open_news(driver, server)
    title = driver.find_element(By.TAG_NAME, "h1").text

    # A fragment on channel news: the news EventSource gets it, the page's client (default channel) must not.
    publish(server, {"channel": "news", "event": "fragment", "data": {"selector": "h1", "html": "HIJACKED"}})
    wait_until(driver, server, "return window.__news.fragment.length === 1;", "the news EventSource got the fragment")
    # Then one on the default channel, as a fence: once it is applied, the news one would have been too.
    publish(server, {"event": "fragment", "data": {"selector": "#fence", "html": "x"}})
    details = wait_for_fragments(driver, server, 1, "the default-channel fragment was handled")
    assert details == [{"selector": "#fence", "swap": "inner", "count": 0}]
    assert driver.find_element(By.TAG_NAME, "h1").text == title
    assert_not_reloaded(driver)


# --- errors over plain HTTP ----------------------------------------------------------------------

VALID = json.dumps({"data": "x"}).encode()

ERRORS = [
    # id, body, content type, extra headers, status, error.code, error.field
    ("invalid-json", b'{"channel": "chat", "data": ', "application/json", {}, 400, "invalid_json", None),
    ("json-not-an-object", b'["x"]', "application/json", {}, 400, "invalid_json", None),
    ("bad-channel", json.dumps({"channel": "no spaces here", "data": "x"}).encode(), "application/json", {},
     400, "invalid_channel", "channel"),
    ("bad-channel-form", b"channel=a%2Fb&data=x", "application/x-www-form-urlencoded", {},
     400, "invalid_channel", "channel"),
    ("unknown-field", json.dumps({"data": "x", "topic": "t"}).encode(), "application/json", {},
     400, "unknown_field", "topic"),
    ("missing-data", json.dumps({"channel": "chat"}).encode(), "application/json", {}, 400, "invalid_data", "data"),
    ("fragment-without-selector", json.dumps({"event": "fragment", "data": {"html": "x"}}).encode(),
     "application/json", {}, 400, "invalid_data", "data"),
    ("text-plain", VALID, "text/plain", {}, 415, "unsupported_media_type", None),
    ("cross-site-origin", VALID, "application/json", {"Origin": "http://evil.example"}, 403, "cross_origin", None),
    ("sec-fetch-site-cross-site", VALID, "application/json", {"Sec-Fetch-Site": "cross-site"},
     403, "cross_origin", None),
]


@pytest.mark.parametrize("body,content_type,headers,expected_status,code,field", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_publish_errors(server, body, content_type, headers, expected_status, code, field):
    got, response_headers, reply = request(server, "__beacon/publish", body, content_type, headers)
    assert got == expected_status, f"sent {content_type} {body!r} {headers}; got {got}: {reply!r}\n{server.log()}"
    assert response_headers.get_content_type() == "application/json", response_headers.get("Content-Type")
    error = json.loads(reply)["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert error.get("field") == field, error
    assert status(server)["eventsPublished"] == 0, "a refused publish must publish nothing"


def test_publish_accepts_same_origin_and_refuses_get(server):
    origin = server.base_url.rstrip("/")
    event_id = publish(server, {"data": "x"}, headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert status(server)["lastEventId"] == event_id

    got, headers, reply = request(server, "__beacon/publish", method="GET")
    assert got == 405, reply
    assert headers.get("Allow") == "POST"
    assert json.loads(reply)["error"]["code"] == "method_not_allowed"
