"""`TaskitoRouter`: the taskito HTTP API for a FastAPI app that shares the Django database.

Call `django.setup()` before importing this module. The router has NO authentication by
default: pass `dependencies=[Depends(django_session_auth)]` (the Django session, the admin's
permissions, CSRF-checked) or your own. Each JSON endpoint is a plain `def`, so FastAPI runs
it in its thread pool, off the event loop, and closes stale Django connections before and
after its database work (FastAPI sends none of Django's request signals). The result wait
and the progress stream are async: they wait on the event loop, and each of their reads runs
in the thread pool between connection clean-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from enum import Enum
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response, StreamingResponse

from taskito.conf import taskito_settings
from taskito.contrib import endpoints
from taskito.contrib.endpoints import ROUTES, ApiError, release_connections
from taskito.contrib.fastapi import openapi
from taskito.contrib.fastapi.auth import ROUTE_PREFIX, DjangoSessionAuth, django_session_auth
from taskito.contrib.fastapi.models import (
    CancelResponse,
    CircuitBreakerResponse,
    DeadLetterResponse,
    ErrorResponse,
    HealthResponse,
    JobErrorResponse,
    JobLogResponse,
    JobResponse,
    JobResultResponse,
    ProgressEvent,
    ReadinessResponse,
    RequeueResponse,
    RetryResponse,
    RevokeResponse,
    StatsResponse,
    WorkerResponse,
    WorkflowResponse,
)
from taskito.queue import Queue

__all__ = [
    "CancelResponse", "DeadLetterResponse", "DjangoSessionAuth", "ErrorResponse",
    "HealthResponse", "JobErrorResponse", "JobLogResponse", "JobResponse",
    "JobResultResponse", "ProgressEvent", "ReadinessResponse", "RetryResponse",
    "StatsResponse", "TaskitoRouter", "django_session_auth",
]

#: seconds without a change after which a progress stream sends a `: keep-alive` comment
KEEP_ALIVE = 15.0
#: the routes that answer server-sent events
STREAMS = ("job_progress", "workflow_progress")


class EventStream(StreamingResponse):
    """A streamed `text/event-stream` response (also what the route's OpenAPI names)."""

    media_type = "text/event-stream"


#: what _unless_disconnected returns when the client went away first
CLIENT_GONE = object()
#: on every answer: it depends on who asks (a session cookie or a token)
PRIVATE = {"Cache-Control": "private", "Vary": "Cookie, Authorization"}
#: the methods a route answers 405 to (in JSON, with Allow) instead of letting the request
#: fall through to whatever the app mounts behind the router
OTHER_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _refuse(exc: ApiError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.detail,
                         headers={**PRIVATE, **exc.headers})


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """One unit of ORM work between connection clean-ups; ApiError -> 400/404."""
    release_connections()
    try:
        return fn(*args)
    except ApiError as exc:
        raise _refuse(exc) from None
    finally:
        release_connections()


async def _disconnection(request: Request) -> None:
    """Return once the client has gone away (the request has no body left to read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Coroutine[Any, Any, Any]) -> Any:
    """`work`'s result, or CLIENT_GONE once the client disconnects first (then `work` is
    cancelled: Starlette lets a plain endpoint run on after its client left, and a result
    wait would keep its slot for its whole timeout)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnection(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # the cancelled wait has given its slot back when this returns
    return CLIENT_GONE if task.cancelled() else task.result()


def _run(fn: Callable[..., Any], *args: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_call(fn, *args), status_code=status, headers=PRIVATE)


def _parse(fn: Callable[..., Any], *args: Any) -> Any:
    """A query parameter's parser (no database): ApiError -> 400."""
    try:
        return fn(*args)
    except ApiError as exc:
        raise _refuse(exc) from None


def _sse(event_id: int, event: dict[str, Any]) -> str:
    """One server-sent event of the default type: an id line and a ProgressEvent as data."""
    return f"id: {event_id}\ndata: {json.dumps(event)}\n\n"


async def _progress_stream(queue: Queue, job_id: str, state: dict[str, Any] | None,
                           request: Request, partial: bool) -> AsyncIterator[str]:
    """A job's stream (see `_stream`)."""
    async for chunk in _stream(state, request, endpoints.event_is_terminal,
                               endpoints.progress_state, queue, job_id, partial):
        yield chunk


async def _stream(state: dict[str, Any] | None, request: Request,
                  is_terminal: Callable[[dict[str, Any]], bool], poll: Callable[..., Any],
                  *args: Any) -> AsyncIterator[str]:
    """The current state, then each change, until a terminal status, the row's removal or
    the client's disconnection. Polls (`poll(*args)`) run off the event loop and hold no
    connection between them; a client that goes away cancels the stream at its next
    await."""
    interval = float(taskito_settings.SSE_POLL_INTERVAL)
    sent: dict[str, Any] | None = None
    event_id = 0
    quiet_since = time.monotonic()
    while state is not None:
        if state != sent:
            event_id += 1
            yield _sse(event_id, state)
            if is_terminal(state):
                return
            sent, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE:
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle connection
            quiet_since = time.monotonic()
        await anyio.sleep(interval)
        if await request.is_disconnected():  # servers that never cancel a stream (ASGI 2.4)
            return
        state = await run_in_threadpool(_call, poll, *args)


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)  # the last value of a repeated parameter, like Django


Made = tuple[Callable[..., Any], Any, dict[int | str, Any]]


class TaskitoRouter(APIRouter):
    """The endpoints of docs/api.md over `queue`: `app.include_router(TaskitoRouter(queue),
    prefix="/tasks")`. `include_routes` / `exclude_routes` take the route names of
    `taskito.contrib.endpoints.ROUTES` ("stats", "jobs", "job_cancel", ...). Each path also
    answers with a trailing slash, and other methods get a 405 in JSON. `metrics=True` adds
    GET /metrics, the Prometheus scrape of taskito.contrib.prometheus (the `prometheus`
    extra); `django_session_auth` lets TASKITO["METRICS_TOKEN"] in there as a bearer
    token."""

    def __init__(self, queue: Queue, *, tags: list[str | Enum] | None = None,
                 dependencies: Sequence[Depends] | None = None,
                 include_routes: Collection[str] | None = None,
                 exclude_routes: Collection[str] | None = None, metrics: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(tags=tags or ["taskito"], dependencies=dependencies, **kwargs)
        self.queue = queue
        unknown = (set(include_routes or ()) | set(exclude_routes or ())) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown taskito routes: {', '.join(sorted(unknown))}")
        for name in ROUTES:
            if include_routes is not None and name not in include_routes:
                continue
            if exclude_routes is not None and name in exclude_routes:
                continue
            self._add(name)
        if metrics:
            self._add_metrics()

    def _add_metrics(self) -> None:
        # imported here: it raises ImproperlyConfigured, naming the extra, without
        # prometheus_client, and a router without metrics must not need it
        from taskito.contrib.prometheus import exposition

        def metrics(request: Request) -> Response:
            body, content_type = _call(exposition, self.queue, request.headers.get("accept"))
            return Response(body, media_type=content_type,
                            headers={**PRIVATE, "Cache-Control": "private, no-cache"})

        for at, documented in (("/metrics", True), ("/metrics/", False)):
            self.add_api_route(at, metrics, methods=["GET"], name=f"{ROUTE_PREFIX}metrics",
                               response_class=Response, include_in_schema=documented,
                               responses={200: {"content": {"text/plain": {}},
                                                "description": "Prometheus text format"}})
            self.add_api_route(at, _not_allowed("GET"),
                               methods=[m for m in OTHER_METHODS if m != "GET"],
                               name=f"{ROUTE_PREFIX}metrics", include_in_schema=False)

    def _add(self, name: str) -> None:
        method, path = ROUTES[name]
        endpoint, model, responses = getattr(self, f"_make_{name}")()
        # only the stream names its class: the JSON routes keep the app's default
        stream: dict[str, Any] = (
            {"response_class": EventStream} if name in STREAMS else {})
        extra = {"parameters": openapi.PARAMETERS[name]} if name in openapi.PARAMETERS else None
        for at, documented in ((path, True), (path + "/", False)):
            self.add_api_route(at, endpoint, methods=[method], name=f"taskito_{name}",
                               response_model=model, responses=responses,
                               openapi_extra=extra, include_in_schema=documented, **stream)
            self.add_api_route(at, _not_allowed(method),
                               methods=[m for m in OTHER_METHODS if m != method],
                               name=f"taskito_{name}", include_in_schema=False)

    def _make_stats(self) -> Made:
        def stats() -> JSONResponse:
            return _run(endpoints.stats, self.queue)
        return stats, StatsResponse, openapi.responses("stats")

    def _make_stats_queues(self) -> Made:
        def stats_queues() -> JSONResponse:
            return _run(endpoints.stats_by_queue, self.queue)
        return stats_queues, dict[str, StatsResponse], openapi.responses("stats_queues")

    def _make_jobs(self) -> Made:
        def jobs(request: Request) -> JSONResponse:
            return _run(endpoints.list_jobs, self.queue, _params(request))
        return jobs, list[JobResponse], openapi.responses("jobs")

    def _make_job(self) -> Made:
        def job(job_id: str) -> JSONResponse:
            return _run(endpoints.get_job, self.queue, job_id)
        return job, JobResponse, openapi.responses("job")

    def _make_workflow(self) -> Made:
        def workflow(workflow_id: str) -> JSONResponse:
            return _run(endpoints.get_workflow, self.queue, workflow_id)
        return workflow, WorkflowResponse, openapi.responses("workflow")

    def _make_workflow_progress(self) -> Made:
        def workflow_progress(request: Request, workflow_id: str) -> EventStream:
            state = _call(endpoints.first_workflow_progress_state, self.queue, workflow_id)
            return EventStream(_stream(state, request, endpoints.workflow_event_is_terminal,
                                       endpoints.workflow_progress_state, self.queue,
                                       workflow_id),
                               headers={**PRIVATE, "Cache-Control": "private, no-cache",
                                        "X-Accel-Buffering": "no"})
        return workflow_progress, None, openapi.progress_stream()

    def _make_job_errors(self) -> Made:
        def job_errors(job_id: str) -> JSONResponse:
            return _run(endpoints.job_errors, self.queue, job_id)
        return job_errors, list[JobErrorResponse], openapi.responses("job_errors")

    def _make_job_logs(self) -> Made:
        def job_logs(job_id: str) -> JSONResponse:
            return _run(endpoints.job_logs, self.queue, job_id)
        return job_logs, list[JobLogResponse], openapi.responses("job_logs")

    def _make_job_result(self) -> Made:
        async def job_result(request: Request, job_id: str) -> JSONResponse:
            wait = _parse(endpoints.timeout_param, _params(request))
            try:
                body = await _unless_disconnected(
                    request, endpoints.await_result(self.queue, job_id, wait))
            except ApiError as exc:
                raise _refuse(exc) from None
            if body is CLIENT_GONE:  # nobody reads it; 499 is nginx's "client closed"
                return JSONResponse({"detail": "The client closed the request."},
                                    status_code=499, headers=PRIVATE)
            return JSONResponse(body, headers=PRIVATE)
        return job_result, JobResultResponse, openapi.responses("job_result")

    def _make_job_progress(self) -> Made:
        def job_progress(request: Request, job_id: str) -> EventStream:
            with_partial = _parse(endpoints.flag_param, _params(request), "partial")
            state = _call(endpoints.first_progress_state, self.queue, job_id, with_partial)
            return EventStream(_progress_stream(self.queue, job_id, state, request,
                                                with_partial),
                               headers={**PRIVATE, "Cache-Control": "private, no-cache",
                                        "X-Accel-Buffering": "no"})
        return job_progress, None, openapi.progress_stream()

    def _make_job_cancel(self) -> Made:
        def job_cancel(job_id: str) -> JSONResponse:
            return _run(endpoints.cancel_job, self.queue, job_id)
        return job_cancel, CancelResponse, openapi.responses("job_cancel")

    def _make_job_requeue(self) -> Made:
        def job_requeue(job_id: str) -> JSONResponse:
            return _run(endpoints.requeue_job, self.queue, job_id)
        return job_requeue, RequeueResponse, openapi.responses("job_requeue")

    def _make_task_revoke(self) -> Made:
        def task_revoke(task_name: str) -> JSONResponse:
            return _run(endpoints.revoke_task, self.queue, task_name)
        return task_revoke, RevokeResponse, openapi.responses("task_revoke")

    def _make_workers(self) -> Made:
        def workers() -> JSONResponse:
            return _run(endpoints.workers, self.queue)
        return workers, list[WorkerResponse], openapi.responses("workers")

    def _make_circuit_breakers(self) -> Made:
        def circuit_breakers() -> JSONResponse:
            return _run(endpoints.circuit_breakers, self.queue)
        return circuit_breakers, list[CircuitBreakerResponse], openapi.responses(
            "circuit_breakers")

    def _make_dead_letters(self) -> Made:
        def dead_letters(request: Request) -> JSONResponse:
            return _run(endpoints.dead_letters, self.queue, _params(request))
        return dead_letters, list[DeadLetterResponse], openapi.responses("dead_letters")

    def _make_dead_letter_retry(self) -> Made:
        def dead_letter_retry(dead_id: str) -> JSONResponse:
            return _run(endpoints.retry_dead, self.queue, dead_id)
        return dead_letter_retry, RetryResponse, openapi.responses("dead_letter_retry")

    def _make_health(self) -> Made:
        def health() -> JSONResponse:
            return JSONResponse(endpoints.health(), headers=PRIVATE)
        return health, HealthResponse, openapi.responses("health")

    def _make_readiness(self) -> Made:
        def readiness() -> JSONResponse:
            status, body = _call(endpoints.readiness, self.queue)
            return JSONResponse(body, status_code=status, headers=PRIVATE)
        return readiness, ReadinessResponse, {**openapi.responses("readiness"),
                                              503: {"model": ReadinessResponse}}


def _not_allowed(allowed: str) -> Callable[[Request], JSONResponse]:
    def not_allowed(request: Request) -> JSONResponse:
        return JSONResponse({"detail": f'Method "{request.method}" not allowed.'},
                            status_code=405, headers={**PRIVATE, "Allow": allowed})
    return not_allowed
