"""ASGI entry point for the taskito example project: one app that serves both APIs.

    uvicorn example_project.asgi:application

FastAPI answers under /fastapi/ (taskito's router at /fastapi/tasks/, its docs at
/fastapi/docs); everything else goes to Django: the demo page, the admin, the DRF API at
/tasks/ and the progress streams. Both share Django's database and its login: FastAPI's
endpoints accept staff users who logged in through the Django admin.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django.setup()  # before anything imports Django models (taskito.contrib.fastapi does)

from django.conf import settings  # noqa: E402
from django.contrib import auth  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from fastapi import Depends, FastAPI, HTTPException, Request  # noqa: E402
from fastapi.concurrency import run_in_threadpool  # noqa: E402

from taskito import queue  # noqa: E402
from taskito.contrib.fastapi import TaskitoRouter  # noqa: E402


def session_user(session_key: str | None) -> Any:
    """The user of a Django session (AnonymousUser if none), found as Django's own middleware
    finds it, including the check that the password has not changed since the login."""
    close_old_connections()
    try:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        return auth.get_user(request)
    finally:
        close_old_connections()


async def require_staff(request: Request) -> None:
    """FastAPI dependency: 401 unless logged in (through the Django admin), 403 unless staff."""
    # The ORM is synchronous: run it in a worker thread, never on the event loop.
    user = await run_in_threadpool(
        session_user, request.cookies.get(settings.SESSION_COOKIE_NAME))
    if not user.is_authenticated:
        raise HTTPException(status_code=401, detail="Log in at /admin/ first.")
    if not user.is_staff:
        raise HTTPException(status_code=403, detail="Staff only.")


app = FastAPI(title="taskito example", docs_url="/fastapi/docs",
              openapi_url="/fastapi/openapi.json", redoc_url=None)
app.include_router(TaskitoRouter(queue, dependencies=[Depends(require_staff)]),
                   prefix="/fastapi/tasks")
# Django serves the rest, static files included (admin CSS, the demo's script) as runserver
# does in development; a production site serves collected static files another way.
app.mount("/", ASGIStaticFilesHandler(get_asgi_application()))

application = app
