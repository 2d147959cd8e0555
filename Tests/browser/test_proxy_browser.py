"""Chromium through `beacon serve --proxy` to the Flask chat example (examples/flask-chat)."""

import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from conftest import REPO_ROOT, _free_port, beacon_server, flask_server
from helpers import CONNECTED_JS, wait_until

EXAMPLE = REPO_ROOT / "examples" / "flask-chat"


@pytest.fixture
def chat(tmp_path):
    """A copy of the example run by Flask, Beacon in front of it watching its templates and static files."""
    app_dir = tmp_path / "flask-chat"
    shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    beacon_port = _free_port()
    with flask_server(app_dir, env={"BEACON_URL": f"http://127.0.0.1:{beacon_port}"}) as (port, _):
        with beacon_server(tmp_path, site_dir=False, cwd=app_dir, port=beacon_port,
                           extra_args=("--proxy", f"http://127.0.0.1:{port}", "--watch", "templates",
                                       "--watch", "static")) as beacon:
            yield beacon


def test_two_windows_chat_through_the_proxy(chat, driver, second_driver):
    for browser in (driver, second_driver):
        browser.get(chat.url("/"))
        wait_until(browser, chat, CONNECTED_JS, "the page's live client is connected")
        wait_until(browser, chat, "return document.querySelectorAll('script[src=\"/__beacon/client.js\"]').length === 1",
                   "exactly one client tag")
    box = driver.find_element(By.NAME, "text")
    box.send_keys("hello from one")
    driver.find_element(By.CSS_SELECTOR, "#chat button").click()
    for browser in (driver, second_driver):
        wait_until(browser, chat, "return [...document.querySelectorAll('#messages li')].some(li => li.textContent === 'hello from one')",
                   "the message shows in every window")


def test_an_apps_sse_route_streams_unbuffered_to_the_page(chat, driver):
    driver.get(chat.url("/"))
    driver.execute_script("""
        window.got = [];
        const s = new EventSource('/stream?count=30');
        s.onmessage = (e) => window.got.push([Date.now() / 1000, parseFloat(e.data.split(' ')[1])]);""")
    # The route writes one event every 200 ms for 6 s: the first ones arrive long before it ends.
    wait_until(driver, chat, "return window.got.length >= 3", "three events of the app's stream arrived", timeout=4)
    lags = driver.execute_script("return window.got.map(([at, sent]) => at - sent)")
    assert max(lags) < 0.2, f"lags: {lags}"


def test_the_502_page_turns_into_the_app_when_it_starts(tmp_path, driver):
    port = _free_port()
    app_dir = tmp_path / "flask-chat"
    shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    with beacon_server(tmp_path, site_dir=False, cwd=app_dir,
                       extra_args=("--proxy", f"http://127.0.0.1:{port}")) as beacon:
        driver.get(beacon.url("/"))
        assert "nothing answers at" in driver.page_source
        with flask_server(app_dir, port=port):
            wait_until(driver, beacon, "return !!document.getElementById('messages')", "the app's page replaced the 502 page",
                       timeout=15)


def test_a_pages_websocket_echoes_through_the_proxy(tmp_path, driver):
    from proxy_app.websocket_echo import echo_app

    with echo_app() as app:
        with beacon_server(tmp_path, site_dir=False, extra_args=("--proxy", f"http://127.0.0.1:{app.port}")) as beacon:
            driver.get(beacon.url("/"))
            wait_until(driver, beacon, "return document.querySelector('h1').textContent === 'echo page'",
                       "the app's page loaded through Beacon")
            driver.execute_script("""
                window.got = [];
                const socket = new WebSocket(`ws://${location.host}/ws`);
                socket.onmessage = (e) => window.got.push(e.data);
                socket.onopen = () => { socket.send('one'); socket.send('two'); };""")
            wait_until(driver, beacon, "return window.got.join(',') === 'welcome,one,two'",
                       "the app's welcome and both echoes arrived")
            assert app.upgrades[-1][1]["origin"] == [beacon.base_url.rstrip("/")]
