"""What an edit does to pages an app server makes, Beacon in front (`serve --proxy`): Chromium on a
copy of examples/flask-chat run by Flask's dev server in debug mode (its reloader and template
auto-reload, as `flask run --debug` gives a user)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from selenium.webdriver.common.by import By

from conftest import REPO_ROOT, _free_port, beacon_server, flask_server, wait_for_port
from helpers import CONNECTED_JS, wait_until, write_in_place

EXAMPLE = REPO_ROOT / "examples" / "flask-chat"

# Every `beacon:patched`, with what the marked element showed after it.
RECORD_PATCHES_JS = """
window.marker = 42;
window.__patches = [];
document.addEventListener('beacon:patched', () => {
  const v = document.getElementById('version');
  window.__patches.push(v ? v.textContent : null);
});
"""

# The copy's app.py gains a version the page shows and a page that answers a POST.
APP_ADDITIONS = '''

VERSION = "one"


@app.context_processor
def version():
    return {"version": VERSION}


@app.post("/preview")
def preview():
    return render_template("index.html", messages=[request.form.get("text", "")])
'''


@pytest.fixture
def app_dir(tmp_path):
    copy = tmp_path / "flask-chat"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "app.py", "a") as app:
        app.write(APP_ADDITIONS)
    template = copy / "templates" / "index.html"
    template.write_text(template.read_text().replace("<h1>Chat</h1>", '<h1>Chat</h1>\n  <p id="version">{{ version }}</p>'))
    return copy


@pytest.fixture
def live(tmp_path, app_dir):
    """Flask in debug mode, Beacon in front of it watching the app's folder (no --watch: the current one)."""
    with flask_server(app_dir, debug=True) as (port, _):
        with beacon_server(tmp_path, site_dir=False, cwd=app_dir,
                           extra_args=("--proxy", f"http://127.0.0.1:{port}")) as beacon:
            yield beacon


def open_page(driver, beacon, path="/"):
    driver.get(beacon.url(path))
    wait_until(driver, beacon, CONNECTED_JS, "the page's live client is connected")
    driver.execute_script(RECORD_PATCHES_JS)


def assert_not_reloaded(driver):
    assert driver.execute_script("return window.marker;") == 42, "the page reloaded (window.marker is gone)"


def test_a_template_edit_patches_the_open_page_in_place(live, app_dir, driver):
    open_page(driver, live)
    box = driver.find_element(By.NAME, "text")
    box.send_keys("half-typed")
    template = app_dir / "templates" / "index.html"
    write_in_place(template, template.read_text().replace("<h1>Chat</h1>", "<h1>Chat room</h1>"))

    wait_until(driver, live, "return document.querySelector('h1').textContent === 'Chat room'",
               "the page shows the edited template")
    assert_not_reloaded(driver)
    assert driver.find_element(By.NAME, "text").get_attribute("value") == "half-typed", "typed input was lost"
    assert driver.execute_script("return window.__patches.length;") == 1


def test_a_stylesheet_edit_swaps_in_place_matched_by_path(live, app_dir, driver):
    open_page(driver, live)
    sheet = app_dir / "static" / "css" / "site.css"
    write_in_place(sheet, sheet.read_text() + "\nh1 { color: rgb(1, 2, 3); }\n")

    wait_until(driver, live, "return getComputedStyle(document.querySelector('h1')).color === 'rgb(1, 2, 3)'",
               "the new stylesheet applies")
    assert_not_reloaded(driver)
    href = driver.execute_script("return document.querySelector('link[rel=stylesheet]').href;")
    assert href.startswith(live.url("/static/css/site.css?")) and "beacon=" in href, href
    assert driver.execute_script("return window.__patches.length;") == 0, "a stylesheet is swapped, not a refetch"


def test_a_code_edit_waits_for_the_restarted_app_then_refreshes_once(live, app_dir, driver):
    """Werkzeug's reloader keeps the socket across the restart, so the old process answers for up to
    a second after the edit: the one refresh must show what the new code makes."""
    open_page(driver, live)
    assert driver.find_element(By.ID, "version").text == "one"
    app = app_dir / "app.py"
    write_in_place(app, app.read_text().replace('VERSION = "one"', 'VERSION = "two"'))

    wait_until(driver, live, "return window.__patches.length >= 1", "the page refreshed after the restart",
               timeout=20)
    assert driver.execute_script("return window.__patches;") == ["two"], "refreshed before the new code answered"
    assert_not_reloaded(driver)


def test_a_page_that_answers_a_post_reloads_instead_of_refetching(live, app_dir, driver):
    open_page(driver, live)
    driver.execute_script("""
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/preview';
        form.innerHTML = '<input name="text" value="posted">';
        document.body.append(form); form.submit();""")
    wait_until(driver, live, "return [...document.querySelectorAll('#messages li')].some(li => li.textContent === 'posted')",
               "the POST's answer is shown")
    wait_until(driver, live, CONNECTED_JS, "the client on the POST's answer is connected")
    assert driver.execute_script("return document.querySelector('script[data-beacon-method]').dataset.beaconMethod;") == "POST"
    driver.execute_script("window.__answer = 'kept until a reload';")
    template = app_dir / "templates" / "index.html"
    write_in_place(template, template.read_text().replace("<h1>Chat</h1>", "<h1>Chat again</h1>"))
    # A GET of /preview is another page (405 here): the tab reloads (and re-posts) instead.
    wait_until(driver, live, "return window.__answer === undefined", "the POST's answer reloaded", timeout=15)


# A one-file Django site: its autoreloader runs the server in a child process that binds the
# socket itself, so a restart refuses connections for a moment (unlike Werkzeug's).
DJANGO_APP = '''
import sys
from pathlib import Path

from django.conf import settings

HERE = Path(__file__).parent
settings.configure(
    DEBUG=True, SECRET_KEY="test", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=[], MIDDLEWARE=[],
    # Read on every request, as a project's templates are once Django's autoreloader resets them.
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [HERE / "templates"],
                "OPTIONS": {"loaders": ["django.template.loaders.filesystem.Loader"]}}],
)

from django.urls import path  # noqa: E402
from views import page  # noqa: E402

urlpatterns = [path("", page)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
'''

DJANGO_VIEWS = '''
from django.shortcuts import render

VERSION = "one"


def page(request):
    return render(request, "page.html", {"version": VERSION})
'''

DJANGO_TEMPLATE = """<!doctype html>
<html><head><title>Django</title></head>
<body><h1>Django</h1><p id="version">{{ version }}</p><input name="text"></body></html>
"""


@contextlib.contextmanager
def django_server(app_dir):
    """`python app.py runserver` (Django's dev server with its autoreloader) on a free port."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "app.py", "runserver", f"127.0.0.1:{port}"],
        cwd=app_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, start_new_session=True)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def test_a_django_code_edit_waits_for_the_restarted_server_then_refreshes_once(tmp_path, driver):
    app_dir = tmp_path / "site"
    (app_dir / "templates").mkdir(parents=True)
    (app_dir / "app.py").write_text(DJANGO_APP)
    (app_dir / "views.py").write_text(DJANGO_VIEWS)
    (app_dir / "templates" / "page.html").write_text(DJANGO_TEMPLATE)
    with django_server(app_dir) as port:
        with beacon_server(tmp_path, site_dir=False, cwd=app_dir,
                           extra_args=("--proxy", f"http://127.0.0.1:{port}")) as beacon:
            open_page(driver, beacon)
            driver.find_element(By.NAME, "text").send_keys("kept")
            views = app_dir / "views.py"
            write_in_place(views, views.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
            wait_until(driver, beacon, "return window.__patches.length >= 1", "the page refreshed after the restart",
                       timeout=20)
            assert driver.execute_script("return window.__patches;") == ["two"]
            assert_not_reloaded(driver)
            assert driver.find_element(By.NAME, "text").get_attribute("value") == "kept"

            # A template edit: Django reloads templates without a restart; the page morphs at once.
            template = app_dir / "templates" / "page.html"
            write_in_place(template, template.read_text().replace("<h1>Django</h1>", "<h1>Django edited</h1>"))
            wait_until(driver, beacon, "return document.querySelector('h1').textContent === 'Django edited'",
                       "the page shows the edited template")
            assert_not_reloaded(driver)


def test_a_code_edit_to_an_app_without_a_reloader_refreshes_after_the_bound(tmp_path, app_dir, driver):
    """No reloader: the old process never exits. The wait for it is bounded, the page refreshes with
    what answers, and the next edit is handled as usual (nothing is left waiting)."""
    with flask_server(app_dir) as (port, _):
        with beacon_server(tmp_path, site_dir=False, cwd=app_dir,
                           extra_args=("--proxy", f"http://127.0.0.1:{port}")) as beacon:
            open_page(driver, beacon)
            app = app_dir / "app.py"
            write_in_place(app, app.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
            wait_until(driver, beacon, "return window.__patches.length >= 1", "the page refreshed after the bound",
                       timeout=15)
            write_in_place(app, app.read_text().replace('VERSION = "two"', 'VERSION = "three"'))
            wait_until(driver, beacon, "return window.__patches.length >= 2", "the next edit refreshes it too",
                       timeout=15)
            assert_not_reloaded(driver)
