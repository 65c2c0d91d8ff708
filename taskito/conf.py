"""The TASKITO settings dict, read lazily, validated, and re-read when a test overrides it."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from taskito.exceptions import ConfigurationError
from taskito.registry import parse_rate_limit

DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    # PostgreSQL: the alias workers LISTEN on when DATABASE goes through a transaction pooler
    # (PgBouncer); None: LISTEN on DATABASE, or poll when it looks pooled
    "LISTEN_DATABASE": None,
    "RESULT_TTL": None,
    "DEFAULT_QUEUE": "default",
    "DEFAULT_PRIORITY": 0,
    "DEFAULT_MAX_RETRIES": 3,
    "DEFAULT_TIMEOUT": 300,
    "DEFAULT_RETRY_BACKOFF": 1.0,
    "DEFAULT_MAX_RETRY_DELAY": 3600.0,
    "AUTODISCOVER_MODULE": "tasks",
    "MIDDLEWARE": [],  # dotted paths of taskito.TaskMiddleware subclasses, run for every task
    # worker
    "CONCURRENCY": min(8, (os.cpu_count() or 1) * 2),
    "ASYNC_CONCURRENCY": 100,  # `async def` jobs run at once on each worker's event loop
    "POLL_INTERVAL": 0.0005,  # seconds between cheap "did anything change?" checks
    "IDLE_RECHECK": 0.25,  # seconds between full ready-job checks when nothing changed
    "IDLE_POLL_MAX": 0.002,  # after 1 s without work the poll interval grows to this
    "SQLITE_PRAGMAS": True,
    "HEARTBEAT_INTERVAL": 5.0,  # seconds between a worker's heartbeats (and rescue passes)
    "WORKER_STALE_AFTER": 30.0,  # a worker silent this long is dead; its jobs are rescued
    "DRAIN_TIMEOUT": 30.0,  # seconds a stopping worker waits for running jobs
    "PURGE_INTERVAL": 60.0,  # seconds between result-TTL clean-ups (by the lifeline leader)
    "QUEUE_RATE_LIMITS": {},  # {"emails": "10/s"}: starts per window, across all workers
    # seconds a job of a task this worker does not know is deferred (counted from the job's
    # creation) before it is dead-lettered: room for a deploy to reach every worker
    "UNKNOWN_TASK_GRACE": 600.0,
    # per-worker Prometheus series (taskito.contrib.prometheus.worker): None serves none
    "METRICS_PORT": None,
    "METRICS_HOST": "0.0.0.0",
    # progress streams (taskito.contrib.sse)
    "SSE_POLL_INTERVAL": 0.5,  # seconds between the relay's reads of watched jobs
    "SSE_TOKEN_MAX_AGE": 600,  # seconds a progress_url() token stays valid
    # HTTP API (taskito.contrib)
    "RESULT_WAIT_LIMIT": 100,  # result waits (?timeout=N) in progress at once, per process
    # Prometheus scrapes (taskito.contrib.prometheus): a bearer token that may read /metrics
    # without a user (None: only users with the REST permissions may)
    "METRICS_TOKEN": None,
    # GET /health answers anyone (a load balancer's or orchestrator's probe), not only staff
    "HEALTH_PUBLIC": False,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "DATABASE": (str,),
    "LISTEN_DATABASE": (str, type(None)),
    "RESULT_TTL": (int, float, type(None)),
    "DEFAULT_QUEUE": (str,),
    "DEFAULT_PRIORITY": (int,),
    "DEFAULT_MAX_RETRIES": (int,),
    "DEFAULT_TIMEOUT": (int, float, type(None)),
    "DEFAULT_RETRY_BACKOFF": (int, float),
    "DEFAULT_MAX_RETRY_DELAY": (int, float),
    "AUTODISCOVER_MODULE": (str, type(None)),
    "MIDDLEWARE": (list, tuple),
    "CONCURRENCY": (int,),
    "ASYNC_CONCURRENCY": (int,),
    "POLL_INTERVAL": (int, float),
    "IDLE_RECHECK": (int, float),
    "IDLE_POLL_MAX": (int, float),
    "SQLITE_PRAGMAS": (bool,),
    "HEARTBEAT_INTERVAL": (int, float),
    "WORKER_STALE_AFTER": (int, float),
    "DRAIN_TIMEOUT": (int, float),
    "PURGE_INTERVAL": (int, float),
    "QUEUE_RATE_LIMITS": (dict,),
    "UNKNOWN_TASK_GRACE": (int, float),
    "METRICS_PORT": (int, type(None)),
    "METRICS_HOST": (str,),
    "SSE_POLL_INTERVAL": (int, float),
    "SSE_TOKEN_MAX_AGE": (int, float),
    "RESULT_WAIT_LIMIT": (int,),
    "METRICS_TOKEN": (str, type(None)),
    "HEALTH_PUBLIC": (bool,),
}

_NON_NEGATIVE = {"RESULT_TTL", "DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "DEFAULT_RETRY_BACKOFF",
                 "DRAIN_TIMEOUT", "UNKNOWN_TASK_GRACE", "METRICS_PORT"}
_POSITIVE = {"CONCURRENCY", "ASYNC_CONCURRENCY", "POLL_INTERVAL", "IDLE_RECHECK", "IDLE_POLL_MAX",
             "DEFAULT_MAX_RETRY_DELAY", "HEARTBEAT_INTERVAL", "WORKER_STALE_AFTER",
             "PURGE_INTERVAL", "SSE_POLL_INTERVAL", "SSE_TOKEN_MAX_AGE", "RESULT_WAIT_LIMIT"}


def validate(values: dict[str, Any]) -> None:
    """Raise ConfigurationError naming the first bad key of a TASKITO dict."""
    for key, raw in values.items():
        value: Any = raw
        bound: Any = 0
        types = _TYPES.get(key)
        if types is None:
            continue  # keys of later surfaces (REST, SSE) are validated where they are used
        if isinstance(value, bool) and bool not in types:
            raise ConfigurationError(f"TASKITO[{key!r}] must be a number, not {value!r}")
        if not isinstance(value, types):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise ConfigurationError(f"TASKITO[{key!r}] must be {names}, not {value!r}")
        if value is not None and key in _NON_NEGATIVE and value < bound:
            raise ConfigurationError(f"TASKITO[{key!r}] must be >= 0, not {value!r}")
        if value is not None and key in _POSITIVE and value <= bound:
            raise ConfigurationError(f"TASKITO[{key!r}] must be > 0, not {value!r}")
        if key == "METRICS_PORT" and raw is not None and raw > 65535:
            raise ConfigurationError(f"TASKITO[{key!r}] must be a TCP port (0 to 65535), "
                                     f"not {value!r}")
        if key == "QUEUE_RATE_LIMITS":
            for limit in raw.values():
                parse_rate_limit(limit)


class TaskitoSettings:
    """Attribute access to TASKITO with defaults; the dict is read on first use."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None
        #: bumped on every reload, so that caches derived from settings can tell
        self.generation = 0

    def _load(self) -> dict[str, Any]:
        if self._cache is None:
            user = getattr(django_settings, "TASKITO", None) or {}
            if not isinstance(user, dict):
                raise ConfigurationError("settings.TASKITO must be a dict")
            merged = {**DEFAULTS, **user}
            validate(merged)
            self._cache = merged
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._load()
        if name in values:
            return values[name]
        raise AttributeError(f"unknown TASKITO setting {name!r}")

    def get(self, name: str, default: Any = None) -> Any:
        """A key that has no default (for example a surface's optional key)."""
        return self._load().get(name, default)

    def reload(self) -> None:
        self._cache = None
        self.generation += 1


taskito_settings = TaskitoSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKITO":
        taskito_settings.reload()
