"""ASGI entry point for the taskito example project: one app that serves both APIs.

    uvicorn example_project.asgi:application

FastAPI answers under /fastapi/ (taskito's router at /fastapi/tasks/, its docs at
/fastapi/docs, its schema at /fastapi/openapi.json); everything else goes to Django: the demo
page, the admin, the DRF API at /tasks/ (its schema at /tasks/schema) and the progress
streams. Both share Django's database and its login: FastAPI's endpoints accept the users
who logged in through the Django admin, with the same permissions as the admin's.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django.setup()  # before anything imports Django models (taskito.contrib.fastapi does)

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from fastapi import Depends, FastAPI  # noqa: E402

from taskito import queue  # noqa: E402
from taskito.contrib.fastapi import TaskitoRouter, django_session_auth  # noqa: E402

app = FastAPI(title="taskito example", docs_url="/fastapi/docs",
              openapi_url="/fastapi/openapi.json", redoc_url=None)
# The Django session's user, under the admin's permissions; writes must carry Django's CSRF
# token (X-CSRFToken) and come from this site (Origin, Sec-Fetch-Site).
app.include_router(TaskitoRouter(queue, dependencies=[Depends(django_session_auth)],
                                 metrics=True), prefix="/fastapi/tasks")
# Django serves the rest, static files included (admin CSS, the demo's script) as runserver
# does in development; a production site serves collected static files another way.
app.mount("/", ASGIStaticFilesHandler(get_asgi_application()))

application = app
