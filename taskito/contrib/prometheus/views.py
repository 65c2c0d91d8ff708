"""The scrape: the queue's state as Prometheus series, from one Queue.overview() call.

Series (all gauges): `taskito_jobs{queue,status}`, `taskito_queue_oldest_pending_seconds{queue}`
(0 when nothing waits), `taskito_workers{queue}` (alive per heartbeat),
`taskito_queue_paused{queue}` (1 or 0) and `taskito_dead_letters`. A private registry per
scrape: nothing is kept between scrapes, and the process's default registry is left alone.

Who may scrape: a request whose `Authorization: Bearer <token>` is TASKITO["METRICS_TOKEN"],
or a user the REST API's permission classes let read jobs (the host's DRF authentication
applies; without DRF, the admin's rules on the session user)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

try:
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import CollectorRegistry
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImproperlyConfigured(
        "taskito.contrib.prometheus needs prometheus_client: "
        "pip install 'taskito[prometheus]'") from exc

from taskito.contrib import access
from taskito.queue import Queue
from taskito.queue import queue as default_queue

#: the permission route name (taskito.contrib.access.OTHER_PERMISSIONS)
ROUTE = "metrics"
#: minutes of run history a scrape reads (the series are gauges of the present state)
WINDOW = 1


class OverviewCollector:
    """Gauges from one Queue.overview() dict (a collector for a CollectorRegistry)."""

    def __init__(self, overview: dict[str, Any]) -> None:
        self.overview = overview

    def collect(self) -> Iterator[Metric]:
        queues = self.overview["queues"]
        jobs = GaugeMetricFamily("taskito_jobs", "Jobs by queue and status.",
                                 labels=["queue", "status"])
        oldest = GaugeMetricFamily(
            "taskito_queue_oldest_pending_seconds",
            "Seconds the longest-waiting ready job of the queue has waited (0: none waits).",
            labels=["queue"])
        workers = GaugeMetricFamily(
            "taskito_workers", "Workers taking jobs from the queue, alive per heartbeat.",
            labels=["queue"])
        paused = GaugeMetricFamily("taskito_queue_paused", "1 when the queue is paused.",
                                   labels=["queue"])
        for q in queues:
            for status, n in q["jobs"].items():
                jobs.add_metric([q["name"], status], n)
            oldest.add_metric([q["name"]], q["oldest_pending_seconds"] or 0.0)
            workers.add_metric([q["name"]], q["workers"])
            paused.add_metric([q["name"]], 1 if q["paused"] else 0)
        yield jobs
        yield oldest
        yield workers
        yield paused
        yield GaugeMetricFamily("taskito_dead_letters", "Dead letters kept.",
                                value=self.overview["dead_letters"])


def exposition(queue: Queue, accept: str | None = None) -> tuple[bytes, str]:
    """(body, Content-Type) of a scrape: the text format, or OpenMetrics when `accept` (the
    request's Accept header) asks for it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverviewCollector(queue.overview(minutes=WINDOW)))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def _user_refusal(request: HttpRequest) -> HttpResponse | None:
    """The REST API's refusal for this request (DRF's authentication and permission classes,
    TASKITO["REST_PERMISSION_CLASSES"]), or the admin's rules when DRF is not installed."""
    try:
        from taskito.contrib.rest.views import JobResultGate
    except ImportError:
        why = access.refusal(getattr(request, "user", None), ROUTE)
        return None if why is None else JsonResponse({"detail": why[1]}, status=why[0])
    return JobResultGate(route=ROUTE).refusal(request)


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Cookie", "Authorization"))
    return response


@csrf_exempt  # GET only: other methods get a 405 (in JSON) instead of Django's CSRF page
def metrics_view(request: HttpRequest, queue: Queue | None = None) -> HttpResponse:
    """GET: the queue's state in Prometheus' text format (`path("metrics", metrics_view)`)."""
    if request.method not in ("GET", "HEAD"):
        return _private(JsonResponse({"detail": f'Method "{request.method}" not allowed.'},
                                     status=405, headers={"Allow": "GET, HEAD"}))
    presented = access.bearer_token(request.headers.get("Authorization"))
    if not access.metrics_token_matches(presented):
        refused = _user_refusal(request)
        if refused is not None:
            if presented is not None and refused.status_code == 403:
                refused = JsonResponse({"detail": "Invalid token."}, status=401,
                                       headers={"WWW-Authenticate": 'Bearer realm="taskito"'})
            return _private(refused)
    body, content_type = exposition(queue or default_queue, request.headers.get("Accept"))
    return _private(HttpResponse(body, content_type=content_type))
