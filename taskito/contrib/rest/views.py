"""DRF views over the default Queue; each is a shell around taskito.contrib.endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from taskito import queue as default_queue
from taskito.conf import taskito_settings
from taskito.contrib import access, endpoints
from taskito.contrib.endpoints import KEEP_ALIVE, ApiError
from taskito.contrib.rest import serializers as s
from taskito.contrib.rest.permissions import permission_classes
from taskito.contrib.rest.schema import documented, stream_response
from taskito.queue import Queue


def private(response: HttpResponse) -> HttpResponse:
    """Answers that depend on who asks: no shared cache may keep or mix them up."""
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ("Cookie", "Authorization"))
    return response


class TaskitoAPIView(APIView):
    """Permissions from TASKITO["REST_PERMISSION_CLASSES"] (the admin's rules by default,
    for the view's `route`); the host's authentication classes apply. JSON only, refusals
    included: `renderer_classes` overrides the host's DEFAULT_RENDERER_CLASSES (no browsable
    API; the README says why). A client's mistake (ApiError) becomes 400/404."""

    queue: Queue = default_queue
    route: str = ""
    renderer_classes = [JSONRenderer]

    def get_permissions(self) -> list[BasePermission]:
        return [cls() for cls in permission_classes()]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return Response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
        response: Response = super().handle_exception(exc)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any,
                          **kwargs: Any) -> Any:
        return private(super().finalize_response(request, response, *args, **kwargs))


class StatsView(TaskitoAPIView):
    route = "stats"

    @documented(s.StatsSerializer)
    def get(self, request: Request) -> Response:
        return Response(endpoints.stats(self.queue))


class QueueStatsView(TaskitoAPIView):
    route = "stats_queues"

    @documented({"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Stats"}})
    def get(self, request: Request) -> Response:
        return Response(endpoints.stats_by_queue(self.queue))


class JobListView(TaskitoAPIView):
    route = "jobs"

    @documented(s.JobSerializer(many=True), params="jobs", bad_request=True)
    def get(self, request: Request) -> Response:
        return Response(endpoints.list_jobs(self.queue, request.query_params))


class JobDetailView(TaskitoAPIView):
    route = "job"

    @documented(s.JobSerializer, not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.get_job(self.queue, job_id))


class WorkflowDetailView(TaskitoAPIView):
    route = "workflow"

    @documented(s.WorkflowSerializer, not_found=True)
    def get(self, request: Request, workflow_id: str) -> Response:
        return Response(endpoints.get_workflow(self.queue, workflow_id))


class JobErrorsView(TaskitoAPIView):
    route = "job_errors"

    @documented(s.JobErrorSerializer(many=True), not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.job_errors(self.queue, job_id))


class JobLogsView(TaskitoAPIView):
    route = "job_logs"

    @documented(s.JobLogSerializer(many=True), not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.job_logs(self.queue, job_id))


class JobCancelView(TaskitoAPIView):
    route = "job_cancel"

    @documented(s.CancelSerializer, not_found=True)
    def post(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.cancel_job(self.queue, job_id))


class JobRequeueView(TaskitoAPIView):
    route = "job_requeue"

    @documented(s.RequeueSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.requeue_job(self.queue, job_id))


class TaskRevokeView(TaskitoAPIView):
    route = "task_revoke"

    @documented(s.RevokeSerializer, bad_request=True)
    def post(self, request: Request, task_name: str) -> Response:
        return Response(endpoints.revoke_task(self.queue, task_name))


class WorkerListView(TaskitoAPIView):
    route = "workers"

    @documented(s.WorkerSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(endpoints.workers(self.queue))


class CircuitBreakerListView(TaskitoAPIView):
    route = "circuit_breakers"

    @documented(s.CircuitBreakerSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(endpoints.circuit_breakers(self.queue))


class DeadLetterListView(TaskitoAPIView):
    route = "dead_letters"

    @documented(s.DeadLetterSerializer(many=True), params="dead_letters", bad_request=True)
    def get(self, request: Request) -> Response:
        return Response(endpoints.dead_letters(self.queue, request.query_params))


class DeadLetterRetryView(TaskitoAPIView):
    route = "dead_letter_retry"

    @documented(s.RetrySerializer, not_found=True)
    def post(self, request: Request, dead_id: str) -> Response:
        return Response(endpoints.retry_dead(self.queue, dead_id))


class HealthView(TaskitoAPIView):
    """Liveness; open to anyone (no authentication, no permission class, no query) when
    TASKITO["HEALTH_PUBLIC"] is set."""

    route = "health"

    def perform_authentication(self, request: Request) -> None:
        if not access.is_public(self.route):
            super().perform_authentication(request)

    def get_permissions(self) -> list[BasePermission]:
        return [] if access.is_public(self.route) else super().get_permissions()

    @documented(s.HealthSerializer)
    def get(self, request: Request) -> Response:
        return Response(endpoints.health())


class ReadinessView(TaskitoAPIView):
    route = "readiness"

    @documented(s.ReadinessSerializer, extra={503: s.ReadinessSerializer})
    def get(self, request: Request) -> Response:
        status, body = endpoints.readiness(self.queue)
        return Response(body, status=status)


class JobResultGate(TaskitoAPIView):
    """Runs DRF's authentication, permission and throttle checks for the async views (the
    result wait here, the progress stream in taskito.contrib.sse)."""

    def __init__(self, route: str = "job_result", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.route = route

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The views answer JSON or an event stream whatever the client accepts (EventSource
        # sends Accept: text/event-stream, which no DRF renderer matches): never a 406.
        return super().perform_content_negotiation(request, force=True)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """DRF's authentication, permission and throttle checks; the error response or None."""
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.request = drf_request = self.initialize_request(request)
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request)
        except Exception as exc:
            response = self.finalize_response(drf_request, self.handle_exception(exc))
            rendered: HttpResponse = response.render()
            return rendered
        return None


class _EveryAlias(set[str]):
    def __contains__(self, alias: object) -> bool:
        return True


def never_atomic[V](view: V) -> V:
    """Exempt an async view from ATOMIC_REQUESTS on every database: Django refuses to wrap
    an async view in the request's transaction (a RuntimeError, so a 500), and these views
    wait or stream without writing."""
    view._non_atomic_requests = _EveryAlias()  # type: ignore[attr-defined]
    return view


def json_error(exc: ApiError) -> JsonResponse:
    return JsonResponse({"detail": exc.detail}, status=exc.status, headers=exc.headers)


# Django's CSRF middleware would answer a POST here with its HTML page; these GET-only views
# answer 405 in JSON, and DRF's session authentication still checks CSRF for unsafe methods.
@csrf_exempt
@never_atomic
async def job_result(request: HttpRequest, job_id: str) -> HttpResponse:
    """GET /jobs/{id}/result?timeout=N: waits on the event loop, holding no thread and no
    DB connection between its reads of the job (a plain async view: DRF has none)."""
    gate = JobResultGate()
    refusal = await sync_to_async(gate.refusal)(request)
    if refusal is not None:
        return refusal
    if request.method != "GET":
        return private(JsonResponse({"detail": f'Method "{request.method}" not allowed.'},
                                    status=405, headers={"Allow": "GET"}))
    try:
        timeout = endpoints.timeout_param(request.GET)
        await sync_to_async(endpoints.release_connections)()  # none held while waiting
        body = await endpoints.await_result(gate.queue, job_id, timeout)
    except ApiError as exc:
        return private(json_error(exc))
    return private(JsonResponse(body))


# Never routed to: describes the async view to OpenAPI generators (which see DRF classes).
class JobResultSchema(TaskitoAPIView):
    """{id, status, result, error}, after waiting up to `timeout` seconds for the job."""

    route = "job_result"

    @documented(s.JobResultSerializer, params="job_result", not_found=True, bad_request=True,
                extra={503: s.DetailSerializer})
    def get(self, request: Request, job_id: str) -> Response:
        raise NotImplementedError  # pragma: no cover


def describe[V](view: V, schema: type[APIView]) -> V:
    """Give an async view the DRF class that documents it, so drf-spectacular lists it."""
    view.cls = schema  # type: ignore[attr-defined]
    view.initkwargs = {}  # type: ignore[attr-defined]
    return view


describe(job_result, JobResultSchema)


@csrf_exempt
@never_atomic
async def workflow_progress(request: HttpRequest,
                            workflow_id: str) -> HttpResponse | StreamingHttpResponse:
    """GET /workflows/{id}/progress: the workflow's {"status", "progress"} (the share of its
    steps that have finished) as server-sent events, the current state first, then each
    change, until it ends. A plain async view that polls every SSE_POLL_INTERVAL from a pool
    thread: its cost follows the open streams, and it holds no connection in between (it
    needs no django-eventstream)."""
    gate = JobResultGate(route="workflow_progress")
    refusal = await sync_to_async(gate.refusal)(request)
    if refusal is not None:
        return refusal
    if request.method != "GET":
        return private(JsonResponse({"detail": f'Method "{request.method}" not allowed.'},
                                    status=405, headers={"Allow": "GET"}))
    try:
        state = await endpoints.off_loop(endpoints.first_workflow_progress_state, gate.queue,
                                         workflow_id)
    except ApiError as exc:
        return private(json_error(exc))
    response = StreamingHttpResponse(_workflow_events(gate.queue, workflow_id, state),
                                     content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Cookie", "Authorization"))
    return response


async def _workflow_events(queue: Queue, workflow_id: str,
                           state: dict[str, Any] | None) -> AsyncIterator[str]:
    interval = float(taskito_settings.SSE_POLL_INTERVAL)
    sent: dict[str, Any] | None = None
    event_id = 0
    quiet_since = time.monotonic()
    while state is not None:
        if state != sent:
            event_id += 1
            yield f"id: {event_id}\ndata: {json.dumps(state)}\n\n"
            if endpoints.workflow_event_is_terminal(state):
                return
            sent, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE:
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle connection
            quiet_since = time.monotonic()
        await asyncio.sleep(interval)
        state = await endpoints.off_loop(endpoints.workflow_progress_state, queue, workflow_id)


# Never routed to: describes the async view to OpenAPI generators (which see DRF classes).
class WorkflowProgressSchema(TaskitoAPIView):
    """The workflow's {"status", "progress"} as server-sent events until it ends."""

    route = "workflow_progress"

    @documented(None, not_found=True, extra={(200, "text/event-stream"): stream_response()})
    def get(self, request: Request, workflow_id: str) -> Response:
        raise NotImplementedError  # pragma: no cover


describe(workflow_progress, WorkflowProgressSchema)
