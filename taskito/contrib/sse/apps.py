"""App config of taskito.contrib.sse: system checks, and the worker-side publisher when
django-eventstream's Redis transport is configured."""

from __future__ import annotations

from django.apps import AppConfig


class SseConfig(AppConfig):
    name = "taskito.contrib.sse"
    label = "taskito_sse"
    verbose_name = "Taskito progress streams"

    def ready(self) -> None:
        # Connecting receivers only: no queries and no threads here (ready() runs in every
        # process). The relay thread starts with the first stream a web process serves.
        from taskito.contrib.sse import checks  # noqa: F401  (registers the checks)
        from taskito.contrib.sse.publisher import connect_if_redis

        connect_if_redis()
