"""DRF views over the default Queue; each is a shell around taskito.contrib.endpoints."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from taskito import queue as default_queue
from taskito.contrib import endpoints
from taskito.contrib.endpoints import ApiError
from taskito.contrib.rest import serializers as s
from taskito.contrib.rest.permissions import permission_classes
from taskito.contrib.rest.schema import documented
from taskito.queue import Queue

PAGE = (("limit", int, "1..100, default 20"), ("offset", int, ">= 0, default 0"))
FILTERS = (("status", str, "pending, running, complete, failed, dead or cancelled"),
           ("queue", str, "queue name"), ("task_name", str, "task name"))


class TaskitoAPIView(APIView):
    """Permissions from TASKITO["REST_PERMISSION_CLASSES"] (staff only by default); the
    host's authentication classes apply. A client's mistake (ApiError) becomes 400/404."""

    queue: Queue = default_queue

    def get_permissions(self) -> list[BasePermission]:
        return [cls() for cls in permission_classes()]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return Response({"detail": exc.detail}, status=exc.status)
        response: Response = super().handle_exception(exc)
        return response


class StatsView(TaskitoAPIView):
    @documented(s.StatsSerializer)
    def get(self, request: Request) -> Response:
        return Response(endpoints.stats(self.queue))


class QueueStatsView(TaskitoAPIView):
    @documented({"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Stats"}})
    def get(self, request: Request) -> Response:
        return Response(endpoints.stats_by_queue(self.queue))


class JobListView(TaskitoAPIView):
    @documented(s.JobSerializer(many=True), params=PAGE + FILTERS, bad_request=True)
    def get(self, request: Request) -> Response:
        return Response(endpoints.list_jobs(self.queue, request.query_params))


class JobDetailView(TaskitoAPIView):
    @documented(s.JobSerializer, not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.get_job(self.queue, job_id))


class JobErrorsView(TaskitoAPIView):
    @documented(s.JobErrorSerializer(many=True), not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.job_errors(self.queue, job_id))


class JobLogsView(TaskitoAPIView):
    @documented(s.JobLogSerializer(many=True), not_found=True)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.job_logs(self.queue, job_id))


class JobCancelView(TaskitoAPIView):
    @documented(s.CancelSerializer, not_found=True)
    def post(self, request: Request, job_id: str) -> Response:
        return Response(endpoints.cancel_job(self.queue, job_id))


class DeadLetterListView(TaskitoAPIView):
    @documented(s.DeadLetterSerializer(many=True), params=PAGE, bad_request=True)
    def get(self, request: Request) -> Response:
        return Response(endpoints.dead_letters(self.queue, request.query_params))


class DeadLetterRetryView(TaskitoAPIView):
    @documented(s.RetrySerializer, not_found=True)
    def post(self, request: Request, dead_id: str) -> Response:
        return Response(endpoints.retry_dead(self.queue, dead_id))


class HealthView(TaskitoAPIView):
    @documented(s.HealthSerializer)
    def get(self, request: Request) -> Response:
        return Response(endpoints.health())


class ReadinessView(TaskitoAPIView):
    @documented(s.ReadinessSerializer, extra={503: s.ReadinessSerializer})
    def get(self, request: Request) -> Response:
        status, body = endpoints.readiness(self.queue)
        return Response(body, status=status)


class JobResultGate(TaskitoAPIView):
    """Runs DRF's authentication, permission and throttle checks for the async views (the
    result wait here, the progress stream in taskito.contrib.sse)."""

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


def _wait(queue: Queue, job_id: str, timeout: float) -> dict[str, Any]:
    try:
        return endpoints.wait_for_result(queue, job_id, timeout)
    finally:
        endpoints.close_idle_connections()  # this pool thread's own connections


class _EveryAlias(set[str]):
    def __contains__(self, alias: object) -> bool:
        return True


def never_atomic[V](view: V) -> V:
    """Exempt an async view from ATOMIC_REQUESTS on every database: Django refuses to wrap
    an async view in the request's transaction (a RuntimeError, so a 500), and these views
    wait or stream without writing."""
    view._non_atomic_requests = _EveryAlias()  # type: ignore[attr-defined]
    return view


@never_atomic
async def job_result(request: HttpRequest, job_id: str) -> HttpResponse:
    """GET /jobs/{id}/result?timeout=N: waits in a pool thread, holding no DB connection of
    the request's while it waits (a plain async view: DRF has none)."""
    gate = JobResultGate()
    refusal = await sync_to_async(gate.refusal)(request)
    if refusal is not None:
        return refusal
    if request.method != "GET":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    try:
        timeout = endpoints.timeout_param(request.GET)
        await sync_to_async(endpoints.close_idle_connections)()
        body = await sync_to_async(_wait, thread_sensitive=False)(gate.queue, job_id, timeout)
    except ApiError as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status)
    return JsonResponse(body)
