"""Two `beacon serve --redis` instances on one redis-server, with real pages in Chromium: what is
published on one instance reaches the pages on the other, and a page keeps its place when it moves."""

import json
import urllib.request

from conftest import beacon_server
from helpers import CONNECTED_JS, wait_until
from selenium.webdriver.common.by import By

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def publish(server, payload: dict) -> str:
    request = urllib.request.Request(
        server.url("__beacon/publish"), data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with OPENER.open(request, timeout=10) as response:
        assert response.status == 202, response.status
        return json.loads(response.read())["id"]


def chat_messages(driver) -> list:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#messages li")]


def test_pages_on_two_instances_share_fragments_and_chat_through_redis(tmp_path, redis_url, driver, second_driver):
    with beacon_server(tmp_path, "a", ["--redis", redis_url]) as a, \
            beacon_server(tmp_path, "b", ["--redis", redis_url]) as b:
        # A fragment published on A patches the clock div of a page served by B, in place.
        driver.get(b.url("demos/clock.html"))
        wait_until(driver, b, CONNECTED_JS, "the page on B is connected")
        driver.execute_script("window.marker = 42;")
        publish(a, {"event": "fragment", "data": {"selector": "#clock", "html": "<b>12:34:56</b>"}})
        wait_until(driver, b, "return document.querySelector('#clock').textContent === '12:34:56';",
                   "the clock on B's page shows the fragment published on A")
        assert driver.execute_script("return window.marker;") == 42, "the page was reloaded, not patched"

        # Chat: one user on each instance; both lists agree.
        alice, bob = driver, second_driver
        alice.get(a.url("demos/chat.html"))
        bob.get(b.url("demos/chat.html"))
        for browser, server in ((alice, a), (bob, b)):
            wait_until(browser, server, CONNECTED_JS, "the chat page is connected")
        for text, browser in (("from Alice on A", alice), ("from Bob on B", bob)):
            browser.find_element(By.CSS_SELECTOR, "#chat input[name=data]").send_keys(text)
            browser.find_element(By.CSS_SELECTOR, "#chat button").click()
            for other, server in ((alice, a), (bob, b)):
                wait_until(other, server, lambda d: text in chat_messages(d), f"'{text}' is listed on {server.base_url}")
        assert chat_messages(alice) == chat_messages(bob) == ["from Alice on A", "from Bob on B"]

        # A page that moves to the other instance replays the chat history from Redis, once.
        alice.get(b.url("demos/chat.html"))
        wait_until(alice, b, lambda d: len(chat_messages(d)) >= 2, "the history replays on B")
        assert chat_messages(alice) == ["from Alice on A", "from Bob on B"]
