"""System checks of taskito.contrib.sse."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_streaming(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    if importlib.util.find_spec("django_eventstream") is None:
        messages.append(Error(
            "taskito.contrib.sse needs django-eventstream",
            hint='pip install "taskito[sse]"', id="taskito_sse.E001"))
    if importlib.util.find_spec("rest_framework") is None:
        messages.append(Error(
            "taskito.contrib.sse checks permissions with Django REST framework, which is "
            "not installed", hint='pip install "taskito[sse]"', id="taskito_sse.E003"))
    if hasattr(settings, "EVENTSTREAM_REDIS") and importlib.util.find_spec("redis") is None:
        messages.append(Error(
            "EVENTSTREAM_REDIS is set but the redis package is not installed",
            hint='pip install "taskito[sse-redis]"', id="taskito_sse.E002"))
    if not getattr(settings, "ASGI_APPLICATION", None) and "daphne" not in settings.INSTALLED_APPS:
        messages.append(Warning(
            "taskito progress streams (/jobs/<id>/progress) need an ASGI server; under WSGI "
            "(runserver, gunicorn's sync workers) they answer 501.",
            hint="Serve the project with uvicorn, daphne or hypercorn and set "
                 "ASGI_APPLICATION = '<project>.asgi.application', which also silences this "
                 "warning.",
            id="taskito_sse.W001"))
    return messages
