"""`GET /jobs/{id}/progress`: a job's progress as Server-Sent Events.

Everything a client can get wrong is answered before streaming starts, as JSON like the
REST API: 401/403 without permission, 404 for an unknown job, 400 for a bad request. Then
django-eventstream streams the job's channel, wrapped so that the client gets the current
state first, never the same state twice in a row, and the end of the stream after a
terminal status. Between chunks the stream holds no database connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from asgiref.sync import sync_to_async
from django.core import signing
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from taskito import queue as default_queue
from taskito.conf import taskito_settings
from taskito.contrib.endpoints import (
    ApiError,
    close_idle_connections,
    echo,
    event_is_terminal,
    flag_param,
    is_terminal,
    progress_event,
)
from taskito.contrib.rest import serializers as s
from taskito.contrib.rest.schema import documented, stream_response
from taskito.contrib.rest.views import (
    JobResultGate,
    TaskitoAPIView,
    describe,
    never_atomic,
    private,
)
from taskito.contrib.sse import channel_for, read_token
from taskito.contrib.sse.publisher import uses_redis
from taskito.contrib.sse.relay import State, relay
from taskito.ids import as_uuid
from taskito.queue import Queue
from taskito.serialization import UNSET, loads
from taskito.states import JobStatus

#: seconds between an open stream's own reads of its job: catches what no event announces
#: (a purged job; with Redis, a change made without a signal)
RECHECK = 5.0
#: query parameters of django-eventstream that would change what the stream reads
FOREIGN_PARAMS = ("es-meta", "channel", "link", "recover")


def _detail(status: int, detail: str, **headers: str) -> HttpResponse:
    return private(JsonResponse({"detail": detail}, status=status, headers=headers))


def _refusal(request: HttpRequest, job_id: str) -> HttpResponse | None:
    """None when the request may read the job's stream: a valid token for this job, or what
    the REST API asks (its authentication and permission classes)."""
    token = request.GET.get("token")
    why = ""
    if token:
        try:
            signed = read_token(token, taskito_settings.SSE_TOKEN_MAX_AGE)
        except signing.SignatureExpired:
            why = "the progress token has expired"
        except signing.BadSignature:
            why = "the progress token is not valid"
        else:
            if as_uuid(signed) is not None and as_uuid(signed) == as_uuid(job_id):
                return None
            why = "the progress token is for another job"
    refusal = JobResultGate(route="job_progress").refusal(request)
    if refusal is not None and why:
        return _detail(403, why)
    return refusal


Event = dict[str, Any]  # what a client gets: {"status", "progress"[, "partial"]}


def _event(state: State, with_partial: bool) -> Event:
    """The client's event for a job row's (status, progress, partial JSON)."""
    status, progress, partial = state
    return progress_event(status, progress, loads(partial) if with_partial else UNSET)


def _encode(event: Event) -> str:
    return f"event: message\ndata: {json.dumps(event)}\n\n"


def _parse(block: str) -> dict[str, Any] | None:
    """The body of a `message` event block, else None."""
    kind, data = "message", []
    for line in block.split("\n"):
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if kind != "message" or not data:
        return None
    try:
        body = json.loads("\n".join(data))
        JobStatus.parse(body["status"])
        int(body["progress"])
    except (ValueError, KeyError, TypeError):
        return None
    return body if isinstance(body, dict) else None


def _rewrite(chunk: str, last: Event, with_partial: bool) -> tuple[str, Event]:
    """The chunk as this client gets it: each state event rebuilt with the client's keys
    (an event without "partial" keeps the last one), repeats of the client's state dropped,
    other events (keep-alives, errors) as they are. Also the client's state after it."""
    kept = []
    for block in chunk.split("\n\n"):
        if not block:
            continue
        body = _parse(block)
        if body is None:
            kept.append(block + "\n\n")
            continue
        event = {"status": body["status"], "progress": int(body["progress"])}
        if with_partial:
            event["partial"] = body["partial"] if "partial" in body else last.get("partial")
        if event != last:
            last = event
            kept.append(_encode(event))
    return "".join(kept), last


async def _next(it: AsyncIterator[Any]) -> str | None:
    try:
        chunk = await anext(it)
    except StopAsyncIteration:
        return None
    return chunk.decode() if isinstance(chunk, bytes) else str(chunk)


async def _read(queue: Queue, jid: uuid.UUID) -> State | None:
    state = (await queue.ajob_progress([jid], partial=True)).get(jid)
    await sync_to_async(close_idle_connections)()
    return state


class ProgressStream:
    """The streaming content of a progress response: django-eventstream's stream of the job's
    channel, with the current state first, no repeated states, and the end after a terminal
    status. Django calls close() when the response is done, however it ended (a client that
    went away while a chunk was being sent included), which stops the relay's watch."""

    def __init__(self, inner: AsyncIterator[Any], queue: Queue, jid: uuid.UUID,
                 use_relay: bool, with_partial: bool) -> None:
        self.inner = inner
        self.queue = queue
        self.jid = jid
        self.use_relay = use_relay
        self.with_partial = with_partial
        self.watching = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._events()

    def close(self) -> None:
        """Idempotent: stop watching the job."""
        if self.watching:
            self.watching = False
            relay.unwatch(self.jid)

    async def _events(self) -> AsyncIterator[str]:
        inner, queue, jid = self.inner, self.queue, self.jid
        pending: asyncio.Future[str | None] | None = None
        try:
            opening = await _next(inner)  # django-eventstream registered its listener now
            if opening is None:
                return
            if "event: stream-error" in opening:  # refused by the host's channel manager
                yield opening
                return
            # Let the listener run on to where it waits for events: before that point
            # django-eventstream drops what was queued for it (to re-read its storage). From
            # there on nothing published is lost, so a change after this read reaches us.
            pending = asyncio.ensure_future(_next(inner))
            await asyncio.sleep(0)
            state = await _read(queue, jid)
            if state is None:
                return
            if self.use_relay and not is_terminal(state[0]):
                relay.watch(jid, state)
                self.watching = True
            last = _event(state, self.with_partial)
            yield opening + _encode(last)
            while not event_is_terminal(last):
                if pending is None:
                    pending = asyncio.ensure_future(_next(inner))
                done, _ = await asyncio.wait({pending}, timeout=RECHECK)
                if pending in done:
                    chunk = pending.result()
                    pending = None
                    await sync_to_async(close_idle_connections)()
                    if chunk is None:
                        return
                else:
                    now = await _read(queue, jid)
                    if now is None:
                        return  # the job was purged
                    chunk = _encode(_event(now, self.with_partial))
                chunk, last = _rewrite(chunk, last, self.with_partial)
                if chunk:
                    yield chunk
        finally:
            self.close()
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):  # already running or closed
                    await aclose()


def _valid_last_id(raw: str, channel: str) -> bool:
    """django-eventstream's ids are `channel:number[,channel:number]`; a non-number for this
    channel would fail deep inside its storage read."""
    for part in raw.split(","):
        name, _, number = part.partition(":")
        if unquote(name) == channel and not number.isdigit():
            return False
    return True


def _open(request: HttpRequest, channel: str) -> HttpResponse:
    """django-eventstream's response for the job's channel. With event storage, a client
    without a Last-Event-ID starts at the channel's current id, so that nothing published
    while the stream opens is lost."""
    from django_eventstream.utils import get_storage
    from django_eventstream.views import events

    last_id = request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("lastEventId")
    if get_storage() is not None and not last_id:
        from django_eventstream import get_current_event_id

        request.META["HTTP_LAST_EVENT_ID"] = get_current_event_id([channel])
    elif last_id and not _valid_last_id(last_id, channel):
        return _detail(400, "Last-Event-ID is not an id this stream sent")
    try:
        response: HttpResponse = events(request, channels=[channel])
    finally:
        close_idle_connections()
    return response


def _refused_by_eventstream(response: HttpResponse) -> HttpResponse:
    """django-eventstream's refusals (HTTP 200 plus a stream-error event, or a plain 400)
    as JSON errors."""
    text = response.content.decode(errors="replace")
    if response.status_code == 400:
        return _detail(400, text.strip())
    for line in text.split("\n"):
        if line.startswith("data:"):
            with contextlib.suppress(ValueError):
                error = json.loads(line[5:])
                status = 403 if error.get("condition") == "forbidden" else 400
                return _detail(status, str(error.get("text", "refused")))
    return _detail(400, "the stream was refused")


# GET only: a POST gets 405 in JSON, not the CSRF middleware's HTML page (DRF's session
# authentication still checks CSRF for unsafe methods).
@csrf_exempt
@never_atomic
async def progress(request: HttpRequest, job_id: str) -> HttpResponse:
    """The job's {"status", "progress"} events until a terminal status; with ?partial=1
    each event also carries the task's partial result ("partial", null until it reports
    one)."""
    queue = default_queue
    refusal = await sync_to_async(_refusal)(request, job_id)
    if refusal is not None:
        return refusal
    if request.method != "GET":
        return _detail(405, f'Method "{request.method}" not allowed.', Allow="GET")
    for name in FOREIGN_PARAMS:
        if name in request.GET:
            return _detail(400, f"{name} is not accepted by this stream")
    try:
        with_partial = flag_param(request.GET, "partial")
    except ApiError as exc:
        return _detail(exc.status, exc.detail)
    jid = as_uuid(job_id)
    state = None if jid is None else await _read(queue, jid)
    if jid is None or state is None:
        return _detail(404, f"job {echo(job_id)} not found")
    if is_terminal(state[0]):  # nothing more will happen: the state, and the end
        return private(HttpResponse(_encode(_event(state, with_partial)),
                                    content_type="text/event-stream",
                                    headers={"Cache-Control": "no-cache"}))
    if not isinstance(request, ASGIRequest):
        return _detail(501, "progress streams need an ASGI server (uvicorn, daphne, ...); "
                            "this request came through WSGI")
    if importlib.util.find_spec("django_eventstream") is None:
        return _detail(501, 'progress streams need django-eventstream: pip install "taskito[sse]"')
    response = await sync_to_async(_open)(request, channel_for(jid))
    if isinstance(response, JsonResponse):
        return response
    private(response)
    if not isinstance(response, StreamingHttpResponse):
        return _refused_by_eventstream(response)
    # Iterate django-eventstream's own generator (Django keeps it as `_iterator`; its
    # `streaming_content` is a wrapper that would not pass aclose() on), so that ending the
    # stream removes its listener at once.
    inner = getattr(response, "_iterator", None) or aiter(response.streaming_content)
    response.streaming_content = ProgressStream(inner, queue, jid, use_relay=not uses_redis(),
                                                with_partial=with_partial)
    return response


# Never routed to: describes the async view to OpenAPI generators (which see DRF classes).
class ProgressSchema(TaskitoAPIView):
    """The job's {"status", "progress"} as server-sent events until a terminal status."""

    route = "job_progress"

    @documented(None, params="job_progress", not_found=True, bad_request=True,
                extra={(200, "text/event-stream"): stream_response(),
                       501: s.DetailSerializer})
    def get(self, request: Any, job_id: str) -> Any:
        raise NotImplementedError  # pragma: no cover


describe(progress, ProgressSchema)
