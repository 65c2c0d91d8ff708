"""`TaskitoRouter`: the taskito HTTP API for a FastAPI app that shares the Django database.

Call `django.setup()` before importing this module. The router has NO authentication by
default: pass `dependencies=[Depends(your_auth)]`. Each endpoint is a plain `def`, so FastAPI
runs it in its thread pool, off the event loop, and closes stale Django connections before
and after its database work (FastAPI sends none of Django's request signals). The progress
stream's polls run in the same thread pool, each between connection clean-ups.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import anyio
from django.db import close_old_connections
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from taskito.conf import taskito_settings
from taskito.contrib import endpoints
from taskito.contrib.endpoints import ROUTES, ApiError
from taskito.queue import Queue

__all__ = [
    "CancelResponse", "DeadLetterResponse", "HealthResponse", "JobErrorResponse",
    "JobLogResponse", "JobResponse", "JobResultResponse", "ProgressEvent", "ReadinessResponse",
    "RetryResponse", "StatsResponse", "TaskitoRouter",
]

#: seconds without a change after which a progress stream sends a `: keep-alive` comment
KEEP_ALIVE = 15.0


class StatsResponse(BaseModel):
    pending: int
    running: int
    completed: int
    failed: int
    dead: int
    cancelled: int


class JobResponse(BaseModel):
    id: str
    queue: str
    task_name: str
    status: str
    priority: int
    progress: int
    retry_count: int
    max_retries: int
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    timeout_ms: int | None
    unique_key: str | None
    metadata: Any


class JobErrorResponse(BaseModel):
    id: int
    job_id: str
    attempt: int
    error: str
    failed_at: datetime


class JobLogResponse(BaseModel):
    id: int
    job_id: str
    task_name: str
    level: str
    message: str
    extra: Any
    logged_at: datetime


class JobResultResponse(BaseModel):
    id: str
    status: str
    result: Any
    error: str | None


class CancelResponse(BaseModel):
    cancelled: bool


class DeadLetterResponse(BaseModel):
    id: str
    original_job_id: str
    queue: str
    task_name: str
    error: str | None
    retry_count: int
    failed_at: datetime
    metadata: Any


class RetryResponse(BaseModel):
    new_job_id: str


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str
    storage: bool
    workers: int | None


class ProgressEvent(BaseModel):
    """The JSON `data` of one progress stream event ("partial" only with ?partial=1)."""

    status: str
    progress: int
    partial: Any = None


class ErrorResponse(BaseModel):
    detail: str


class EventStream(StreamingResponse):
    """A streamed `text/event-stream` response (also what the route's OpenAPI names)."""

    media_type = "text/event-stream"


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """One unit of ORM work between connection clean-ups; ApiError -> 400/404."""
    close_old_connections()
    try:
        return fn(*args)
    except ApiError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None
    finally:
        close_old_connections()


def _run(fn: Callable[..., Any], *args: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_call(fn, *args), status_code=status)


def _sse(event_id: int, event: dict[str, Any]) -> str:
    """One server-sent event of the default type: an id line and a ProgressEvent as data."""
    return f"id: {event_id}\ndata: {json.dumps(event)}\n\n"


async def _progress_stream(queue: Queue, job_id: str, state: dict[str, Any] | None,
                           request: Request, partial: bool) -> AsyncIterator[str]:
    """The current state, then each change, until a terminal status, the job's removal or
    the client's disconnection. Polls run off the event loop and hold no connection between
    them; a client that goes away cancels the stream at its next await."""
    interval = float(taskito_settings.SSE_POLL_INTERVAL)
    sent: dict[str, Any] | None = None
    event_id = 0
    quiet_since = time.monotonic()
    while state is not None:
        if state != sent:
            event_id += 1
            yield _sse(event_id, state)
            if endpoints.event_is_terminal(state):
                return
            sent, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE:
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle connection
            quiet_since = time.monotonic()
        await anyio.sleep(interval)
        if await request.is_disconnected():  # servers that never cancel a stream (ASGI 2.4)
            return
        state = await run_in_threadpool(_call, endpoints.progress_state, queue, job_id,
                                        partial)


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)  # the last value of a repeated parameter, like Django


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}}


def _progress_stream_doc() -> dict[int | str, dict[str, Any]]:
    """OpenAPI for the progress stream: 200 text/event-stream of ProgressEvents, 404 JSON."""
    event = {"type": "object", "required": ["data"], "properties": {
        "id": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": ProgressEvent.model_json_schema()}}}
    return {200: {
        "description": "Server-sent events, each `data` a ProgressEvent in JSON: the current "
                       "state, then every change, until a terminal status or the job's purge.",
        "content": {"text/event-stream": {
            "itemSchema": event,
            "example": 'id: 1\ndata: {"status": "running", "progress": 40}\n\n'}},
    }, 404: {  # inline: a "model" would be filed under the route's text/event-stream type
        "description": "Not Found, before any event is sent",
        "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}},
    }}


class TaskitoRouter(APIRouter):
    """The endpoints of API.md over `queue`: `app.include_router(TaskitoRouter(queue),
    prefix="/tasks")`. `include_routes` / `exclude_routes` take the route names of
    `taskito.contrib.endpoints.ROUTES` ("stats", "jobs", "job_cancel", ...)."""

    def __init__(self, queue: Queue, *, tags: list[str | Enum] | None = None,
                 dependencies: Sequence[Depends] | None = None,
                 include_routes: Collection[str] | None = None,
                 exclude_routes: Collection[str] | None = None, **kwargs: Any) -> None:
        super().__init__(tags=tags or ["taskito"], dependencies=dependencies, **kwargs)
        self.queue = queue
        unknown = (set(include_routes or ()) | set(exclude_routes or ())) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown taskito routes: {', '.join(sorted(unknown))}")
        for name, (method, path) in ROUTES.items():
            if include_routes is not None and name not in include_routes:
                continue
            if exclude_routes is not None and name in exclude_routes:
                continue
            endpoint, model, responses = self._endpoint(name)
            # only the stream names its class: the JSON routes keep the app's default
            stream: dict[str, Any] = (
                {"response_class": EventStream} if name == "job_progress" else {})
            self.add_api_route(path, endpoint, methods=[method], name=f"taskito_{name}",
                               response_model=model, responses=responses, **stream)

    def _endpoint(self, name: str) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        made: tuple[Callable[..., Any], Any, dict[int | str, Any]] = getattr(
            self, f"_make_{name}")()
        return made

    def _make_stats(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def stats() -> JSONResponse:
            return _run(endpoints.stats, self.queue)
        return stats, StatsResponse, {}

    def _make_stats_queues(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def stats_queues() -> JSONResponse:
            return _run(endpoints.stats_by_queue, self.queue)
        return stats_queues, dict[str, StatsResponse], {}

    def _make_jobs(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def jobs(request: Request, status: str | None = Query(None),
                 queue: str | None = Query(None), task_name: str | None = Query(None),
                 limit: str | None = Query(None, description="1..100, default 20"),
                 offset: str | None = Query(None, description=">= 0, default 0"),
                 ) -> JSONResponse:
            return _run(endpoints.list_jobs, self.queue, _params(request))
        return jobs, list[JobResponse], BAD_REQUEST

    def _make_job(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job(job_id: str) -> JSONResponse:
            return _run(endpoints.get_job, self.queue, job_id)
        return job, JobResponse, NOT_FOUND

    def _make_job_errors(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job_errors(job_id: str) -> JSONResponse:
            return _run(endpoints.job_errors, self.queue, job_id)
        return job_errors, list[JobErrorResponse], NOT_FOUND

    def _make_job_logs(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job_logs(job_id: str) -> JSONResponse:
            return _run(endpoints.job_logs, self.queue, job_id)
        return job_logs, list[JobLogResponse], NOT_FOUND

    def _make_job_result(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job_result(request: Request, job_id: str, timeout: str | None = Query(
                None, description="seconds to wait, 0..300, default 0")) -> JSONResponse:
            wait = _run_params(endpoints.timeout_param, _params(request))
            return _run(endpoints.wait_for_result, self.queue, job_id, wait)
        return job_result, JobResultResponse, {**NOT_FOUND, **BAD_REQUEST}

    def _make_job_progress(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job_progress(request: Request, job_id: str, partial: str | None = Query(
                None, description="true: each event also carries the partial result")
                ) -> EventStream:
            with_partial = _run_params(endpoints.flag_param, _params(request), "partial")
            state = _call(endpoints.first_progress_state, self.queue, job_id, with_partial)
            return EventStream(_progress_stream(self.queue, job_id, state, request,
                                                with_partial),
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return job_progress, None, _progress_stream_doc()

    def _make_job_cancel(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def job_cancel(job_id: str) -> JSONResponse:
            return _run(endpoints.cancel_job, self.queue, job_id)
        return job_cancel, CancelResponse, NOT_FOUND

    def _make_dead_letters(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def dead_letters(request: Request,
                         limit: str | None = Query(None, description="1..100, default 20"),
                         offset: str | None = Query(None, description=">= 0, default 0"),
                         ) -> JSONResponse:
            return _run(endpoints.dead_letters, self.queue, _params(request))
        return dead_letters, list[DeadLetterResponse], BAD_REQUEST

    def _make_dead_letter_retry(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def dead_letter_retry(dead_id: str) -> JSONResponse:
            return _run(endpoints.retry_dead, self.queue, dead_id)
        return dead_letter_retry, RetryResponse, NOT_FOUND

    def _make_health(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def health() -> JSONResponse:
            return JSONResponse(endpoints.health())
        return health, HealthResponse, {}

    def _make_readiness(self) -> tuple[Callable[..., Any], Any, dict[int | str, Any]]:
        def readiness() -> JSONResponse:
            close_old_connections()
            try:
                status, body = endpoints.readiness(self.queue)
            finally:
                close_old_connections()
            return JSONResponse(body, status_code=status)
        return readiness, ReadinessResponse, {503: {"model": ReadinessResponse}}


def _run_params(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except ApiError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None
