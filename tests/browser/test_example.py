"""The example project as a user runs it: `manage.py migrate`, `uvicorn
example_project.asgi:application` and `manage.py taskito_worker` as real processes on a
SQLite file of their own; then a real browser on its page, and plain HTTP on its two APIs.

The test process itself never touches that database (nor the tests' one)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, BrowserPage
from tests.conftest import ROOT, wait_for
from tests.helpers.processes import Launcher, Proc
from tests.process.helpers import answers, free_port

pytestmark = pytest.mark.browser

EXAMPLE = ROOT / "example_project"
PASSWORD = "correct horse battery staple"
# A staff user and a plain one, each logged in: prints {username: session cookie value}.
MAKE_SESSIONS = f"""
import json
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

def session_of(user):
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value

boss = User.objects.create_user("boss", password={PASSWORD!r}, is_staff=True, is_superuser=True)
visitor = User.objects.create_user("visitor")
print(json.dumps(dict(boss=session_of(boss), visitor=session_of(visitor))))
"""


@dataclass
class Example:
    url: str
    sessions: dict[str, str]
    server: Proc
    worker: Proc


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    """The example project's migrate, web server and worker, each a subprocess."""
    tmp = tmp_path_factory.mktemp("example")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings",
           "TASKITO_EXAMPLE_DB": str(tmp / "example.sqlite3"), "PYTHONUNBUFFERED": "1",
           # this checkout's taskito, not whichever one the environment has installed
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=EXAMPLE, env=env,
                   check=True, timeout=60)
    made = subprocess.run([*manage, "shell", "-c", MAKE_SESSIONS], cwd=EXAMPLE, env=env,
                          check=True, timeout=60, capture_output=True, text=True)
    sessions = json.loads(made.stdout.strip().splitlines()[-1])

    launcher = Launcher(tmp, cwd=EXAMPLE, env=env)

    def start(name: str, *argv: str) -> Proc:
        return launcher.start(name, argv)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start("uvicorn", sys.executable, "-m", "uvicorn",
                   "example_project.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port))
    worker = start("worker", *manage, "taskito_worker")
    try:
        wait_for(lambda: server.popen.poll() is not None or answers(url + "/"), timeout=20)
        assert server.popen.poll() is None, server.describe()
        yield Example(url, sessions, server, worker)
    finally:
        launcher.stop(graceful=True)


def test_example_page_follows_jobs_live(example: Example) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=example.url,
                                          viewport={"width": 1200, "height": 900})
            bp = BrowserPage(context.new_page(), "example")
            page = bp.page
            page.goto("/")
            expect(page.locator("#dead-letters")).to_contain_text("None yet")

            page.click("#start-resize")
            expect(page.locator("#task")).to_contain_text("resize_image")
            progress = page.locator("#progress")
            # on its way: the stream moves the bar while the job runs, not only at the end
            expect(progress).to_have_attribute("value", re.compile(r"^[1-9][0-9]?$"),
                                               timeout=15_000)
            bp.screenshot("progress-midway")
            expect(progress).to_have_attribute("value", "100", timeout=15_000)
            expect(page.locator("#status")).to_have_text("complete")
            expect(page.locator("#percent")).to_have_text("100%")
            expect(page.locator("#partial")).to_have_text("10 of 10 tiles")  # partial result
            bp.screenshot("progress")

            page.click("#start-failing")
            expect(page.locator("#task")).to_contain_text("always_fails")
            expect(page.locator("#status")).to_have_text("dead", timeout=20_000)
            # the script reloads the dead letters once the job is dead
            expect(page.locator("#dead-letters")).to_contain_text("always_fails")
            # an anonymous visitor sees the task and the time, never the error text
            expect(page.locator("#dead-letters")).not_to_contain_text("this task always fails")
            expect(page.locator("#dead-letters")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d"))
            bp.screenshot("dead")
            assert bp.console_errors == []
        finally:
            browser.close()
    assert example.server.popen.poll() is None, example.server.describe()
    assert example.worker.popen.poll() is None, example.worker.describe()


def test_example_admin_login_opens_the_fastapi_api(example: Example) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=example.url)
            bp = BrowserPage(context.new_page(), "example")
            page = bp.page
            page.goto("/admin/login/?next=/admin/taskito/deadletter/")
            page.fill("#id_username", "boss")
            page.fill("#id_password", PASSWORD)
            page.click("#login-form [type=submit]")
            expect(page.locator("#changelist")).to_be_visible()
            bp.screenshot("admin")
            assert bp.console_errors == []  # the admin works under the project's CSP
            response = page.goto("/fastapi/tasks/stats")
            assert response is not None and response.status == 200
            assert set(response.json()) >= {"pending", "running", "dead"}
        finally:
            browser.close()


def status_of(example: Example, path: str, username: str | None) -> int:
    """The HTTP status of GET `path`, anonymously or with `username`'s session cookie."""
    request = urllib.request.Request(example.url + path)
    if username:
        request.add_header("Cookie", f"sessionid={example.sessions[username]}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(("username", "drf", "fastapi"), [
    (None, 403, 403),  # the same answer for anonymous on both surfaces
    ("visitor", 403, 403),
    ("boss", 200, 200),
])
def test_example_apis_are_staff_only(example: Example, username: str | None, drf: int,
                                     fastapi: int) -> None:
    assert status_of(example, "/tasks/stats", username) == drf
    assert status_of(example, "/fastapi/tasks/stats", username) == fastapi


def test_example_serves_both_openapi_documents(example: Example) -> None:
    from openapi_spec_validator import validate

    with urllib.request.urlopen(example.url + "/fastapi/openapi.json", timeout=10) as response:
        fastapi_schema = json.load(response)
    assert "/fastapi/tasks/stats" in fastapi_schema["paths"]
    request = urllib.request.Request(example.url + "/tasks/schema",
                                     headers={"Accept": "application/vnd.oai.openapi+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        drf_schema = json.load(response)
    assert "/tasks/jobs/{job_id}/result" in drf_schema["paths"]
    for schema in (fastapi_schema, drf_schema):
        validate(schema)


def post_status(example: Example, path: str, **headers: str) -> int:
    request = urllib.request.Request(example.url + path, method="POST", headers={
        "Cookie": f"sessionid={example.sessions['boss']}; csrftoken={'t' * 32}", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_example_refuses_forged_cross_site_writes(example: Example) -> None:
    """The issue's curl: a staff session cookie, sent by another site, cancels nothing."""
    for path in (f"/fastapi/tasks/jobs/{'0' * 8}-0000-0000-0000-{'0' * 12}/cancel",
                 f"/tasks/jobs/{'0' * 8}-0000-0000-0000-{'0' * 12}/cancel"):
        assert post_status(example, path, Origin="http://evil.example",
                           **{"X-CSRFToken": "t" * 32}) == 403
        assert post_status(example, path) == 403  # no token
        assert post_status(example, path, Origin=example.url,
                           **{"X-CSRFToken": "t" * 32}) == 404  # the site's own: let through


def test_example_static_files_are_served(example: Example) -> None:
    for path in ("/static/demo/progress.js", "/static/admin/css/base.css"):
        with urllib.request.urlopen(example.url + path, timeout=10) as response:
            assert response.status == 200
