"""`--spa`: navigations to paths with no file get the app's index (client-side routers); asset
requests for missing files still get a real 404. Without it, the site's own 404.html is the 404 page."""

import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import _beacon_bin, beacon_server
from helpers import CONNECTED_JS, wait_until

TAG = b'<script src="/__beacon/client.js"></script>'
INDEX_MARK = b"<title>Beacon"  # the site template's index.html
DOCUMENT = {"Sec-Fetch-Dest": "document", "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def get(server, path, headers=None, method="GET"):
    request = urllib.request.Request(server.url(path), headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def spa(tmp_path):
    with beacon_server(tmp_path, extra_args=("--spa",)) as started:
        yield started


@pytest.mark.parametrize("path", ["/items/42", "/users/jane.doe", "/items/1.1", "/deep/a/b/c/"])
@pytest.mark.parametrize("headers", [DOCUMENT, {"Accept": "text/html"}], ids=["sec-fetch-dest", "accept-only"])
def test_a_navigation_to_a_missing_path_gets_the_index(spa, path, headers):
    status, response_headers, body = get(spa, path, headers)
    assert status == 200, body[:200]
    assert INDEX_MARK in body and body.count(TAG) == 1
    assert response_headers["Content-Type"].startswith("text/html")
    assert response_headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Dest": "script", "Accept": "*/*"},
    {"Sec-Fetch-Dest": "style", "Accept": "text/css,*/*;q=0.1"},
    {"Sec-Fetch-Dest": "image", "Accept": "image/avif,image/webp,*/*"},
    {"Sec-Fetch-Dest": "empty", "Accept": "application/json"},
    {"Accept": "application/json"},
    {"Accept": "*/*"},
    {},
], ids=["script", "style", "image", "fetch-json", "json", "any", "nothing"])
def test_an_asset_request_for_a_missing_file_gets_a_real_404(spa, headers):
    status, _, body = get(spa, "/js/missing.js", headers)
    assert status == 404
    assert INDEX_MARK not in body


def test_real_files_and_folder_indexes_win(spa):
    status, _, body = get(spa, "/about.html", DOCUMENT)
    assert status == 200 and INDEX_MARK not in body and b"About" in body
    status, _, body = get(spa, "/style.css", {"Sec-Fetch-Dest": "style"})
    assert status == 200 and body.startswith(b"/*") or b"{" in body


def test_head_mirrors_get(spa):
    status, get_headers, body = get(spa, "/items/7", DOCUMENT)
    head_status, head_headers, head_body = get(spa, "/items/7", DOCUMENT, method="HEAD")
    assert (head_status, head_body) == (status, b"")
    assert head_headers["Content-Length"] == get_headers["Content-Length"] == str(len(body))
    assert head_headers["Content-Type"] == get_headers["Content-Type"]


def test_spa_index_names_another_page(tmp_path):
    with beacon_server(tmp_path, extra_args=("--spa-index", "/about.html")) as server:
        status, _, body = get(server, "/settings/profile", DOCUMENT)
        assert status == 200 and b"About" in body and body.count(TAG) == 1


def test_a_bad_spa_index_is_a_one_line_error(tmp_path):
    result = subprocess.run([str(_beacon_bin()), "serve", str(tmp_path), "--spa-index", "index.html"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "--spa-index" in result.stderr, result.stderr


def test_without_spa_the_sites_own_404_html_is_the_404_page(tmp_path):
    with beacon_server(tmp_path) as server:
        status, _, body = get(server, "/nope", DOCUMENT)
        assert status == 404 and b"beacon-status" in body  # Beacon's own page first
        (server.site_dir / "404.html").write_text("<!doctype html><html><body><h1>Lost?</h1></body></html>")
        # The watcher tells the file cache; wait (bounded) until the new file is seen.
        deadline = time.monotonic() + 5
        while b"Lost?" not in get(server, "/still/nope", DOCUMENT)[2] and time.monotonic() < deadline:
            time.sleep(0.02)
        status, headers, body = get(server, "/still/nope", DOCUMENT)
        assert status == 404 and b"<h1>Lost?</h1>" in body and body.count(TAG) == 1
        assert headers["Content-Type"].startswith("text/html") and "ETag" not in headers
        status, _, body = get(server, "/still/nope", {**DOCUMENT, "If-None-Match": "*"})
        assert status == 404 and b"Lost?" in body, "a 404 page never answers 304"


def test_a_client_side_route_opened_in_chromium_runs_the_app_live(spa, driver):
    driver.get(spa.url("/items/42"))
    wait_until(driver, spa, CONNECTED_JS, "the index's live client is connected at /items/42")
    assert driver.execute_script("return location.pathname;") == "/items/42"
    assert "Beacon" in driver.title
