"""A real browser against the admin: Debian's chromium driven by Playwright, the app served
by uvicorn in a thread (ASGI, static files included) on a committed database, under a
strict Content Security Policy so that an inline script or style would show up.

Playwright's sync API runs an event loop in the test's thread, so these tests set
DJANGO_ALLOW_ASYNC_UNSAFE for their own duration (never for the rest of the suite)."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest

from tests.helpers.services import unavailable
from tests.settings import RUN_DIR

CHROMIUM = os.environ.get("TASKITO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(RUN_DIR) / "screenshots"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[dev]')"
    if not os.path.exists(CHROMIUM):
        return (f"Debian's chromium is not installed at {CHROMIUM} "
                "(bash scripts/setup.sh installs it with apt-get)")
    return None


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    """Skip without Playwright, uvicorn or chromium; fail instead under CI=true."""
    reason = missing()
    if reason:
        unavailable(reason)


@pytest.fixture
def csp_settings(settings: Any) -> None:
    """Django 6's Content Security Policy: scripts and styles from files (or nonced). Django
    5.2 has none: there the pages run without one."""
    if django.VERSION < (6, 0):
        return
    from django.utils.csp import CSP

    settings.MIDDLEWARE = [*settings.MIDDLEWARE,
                           "django.middleware.csp.ContentSecurityPolicyMiddleware"]
    settings.SECURE_CSP = {"default-src": [CSP.SELF], "script-src": [CSP.SELF, CSP.NONCE],
                           "style-src": [CSP.SELF, CSP.NONCE], "img-src": [CSP.SELF, "data:"]}
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["OPTIONS"]["context_processors"].append("django.template.context_processors.csp")
    settings.TEMPLATES = templates


@pytest.fixture
def live_url(transactional_db: Any, csp_settings: None) -> Iterator[str]:
    """The project served by uvicorn in a thread; its socket listens before the thread
    starts, so the first request simply waits for the server (no start-up polling)."""
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    app = ASGIStaticFilesHandler(get_asgi_application())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class BrowserPage:
    """A Playwright page plus what it noticed: console errors and CSP violations."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.console_errors: list[str] = []
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" and "favicon.ico" not in str(message.location):
            self.console_errors.append(message.text)

    def screenshot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(live_url: str, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    from django.db import connections
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=live_url,
                                          viewport={"width": 1600, "height": 1000})
            context.set_default_timeout(10_000)
            yield BrowserPage(context.new_page(), request.node.name)
        finally:
            # While Playwright runs, the test's ORM calls get their own connection (Django's
            # connections are context-local, and Playwright runs the test in another
            # context); close it here, in that context, or PostgreSQL cannot drop the test
            # database at the end.
            connections.close_all()
            browser.close()
