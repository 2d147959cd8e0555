"""Live reload, end to end: a real `beacon serve`, a real headless Chromium, real file edits.

Each test opens a page, waits for the live client's `hello`, edits the served copy of the site,
and waits (bounded) for the page to react the way the server's protocol promises.
"""

import pytest
from selenium.webdriver.common.by import By

from helpers import CONNECTED_JS, wait_until, write_atomically, write_in_place  # noqa: E402


def open_connected(driver, server, path: str = "") -> None:
    """Opens `path`, waits for the live client to say hello, and sets window.marker = 42."""
    driver.get(server.url(path))
    wait_until(driver, server, CONNECTED_JS, f"the live client on /{path} is connected")
    driver.execute_script("window.marker = 42;")
    assert driver.execute_script("return window.marker;") == 42


def body_background(driver) -> str:
    return driver.execute_script("return getComputedStyle(document.body).backgroundColor;")


@pytest.mark.parametrize("write", [write_in_place, write_atomically], ids=["write-in-place", "atomic-replace"])
def test_css_edit_swaps_stylesheet_without_reload(server, driver, write):
    open_connected(driver, server)
    assert body_background(driver) != "rgb(1, 2, 3)"

    style = server.site_dir / "style.css"
    write(style, style.read_text(encoding="utf-8") + "\nbody { background-color: rgb(1, 2, 3); }\n")

    wait_until(
        driver, server,
        "return getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)';",
        "the new body background-color rgb(1, 2, 3) applies",
    )
    assert driver.execute_script("return window.marker;") == 42, "the page reloaded instead of swapping the stylesheet"
    assert driver.execute_script("return window.__beacon.received;") >= 1
    # The swapped-in link is the same stylesheet with a cache-busting query, and only one is left.
    hrefs = driver.execute_script(
        "return [...document.querySelectorAll('link[rel~=\"stylesheet\"]')].map(l => l.href);")
    wait_until(
        driver, server,
        "return document.querySelectorAll('link[rel~=\"stylesheet\"]').length === 1;",
        f"the old stylesheet link is removed (links now: {hrefs})",
    )
    assert driver.execute_script("return window.marker;") == 42


def test_script_edit_reloads_page(server, driver):
    open_connected(driver, server)

    script = server.site_dir / "app.js"
    write_in_place(script, script.read_text(encoding="utf-8") + "\nwindow.appVersion = 2;\n")

    wait_until(driver, server, "return window.marker === undefined;", "the page reloads (window.marker is gone)")
    wait_until(driver, server, CONNECTED_JS, "the live client is connected again after the reload")
    # The reloaded page ran the new app.js, not a cached copy.
    wait_until(driver, server, "return window.appVersion === 2;", "the edited app.js ran (window.appVersion === 2)")


def test_html_edit_patches_page_in_place(server, driver):
    open_connected(driver, server)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Hello from Beacon"

    index = server.site_dir / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "<h1>Hello from Beacon</h1>" in html
    write_in_place(index, html.replace("<h1>Hello from Beacon</h1>", "<h1>Edited by the browser test</h1>"))

    wait_until(
        driver, server,
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Edited by the browser test",
        "the page shows the edited <h1>",
    )
    assert driver.execute_script("return window.marker;") == 42, "an HTML edit must patch in place, not reload"


def test_new_page_appears_on_its_404(server, driver):
    new_page = server.site_dir / "new.html"
    assert not new_page.exists()
    open_connected(driver, server, "new.html")
    assert "404" in driver.find_element(By.TAG_NAME, "h1").text

    write_in_place(
        new_page,
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>New page</title></head>\n"
        "<body><h1>A brand new page</h1><p id=\"fresh\">Created while the browser was watching.</p></body>\n"
        "</html>\n",
    )

    wait_until(
        driver, server,
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "A brand new page",
        "the created new.html replaces the 404 page",
    )
    assert driver.find_element(By.ID, "fresh").text == "Created while the browser was watching."
    assert driver.title == "New page"
    # The served page has the live client injected too.
    wait_until(driver, server, CONNECTED_JS, "the live client is connected on the new page")
