"""Live job progress for browsers: `GET /jobs/{id}/progress` as Server-Sent Events through
django-eventstream, one channel per job.

    INSTALLED_APPS += ["taskito.contrib.sse"]
    urlpatterns += [path("tasks/", include("taskito.contrib.rest.urls"))]  # or, alone:
    urlpatterns += [path("tasks/", include("taskito.contrib.sse.urls"))]

Events are `{"status", "progress"}`: the current state first, then each change, until a
terminal status, after which the server ends the stream. Progress written by a
`taskito_worker` process reaches the web process either through django-eventstream's Redis
transport (`EVENTSTREAM_REDIS`: the worker publishes) or, by default, through a relay thread
in the web process that reads the rows of the jobs its open streams watch (see `relay`).

Reading a stream needs what reading the job through the REST API needs, or a token from
`progress_url(job_id)` / `progress_token(job_id)` (EventSource cannot send an Authorization
header). This module imports neither django-eventstream nor DRF, so a view can build URLs
without them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core import signing
from django.urls import NoReverseMatch, reverse

from taskito.ids import as_uuid

__all__ = ["TOKEN_SALT", "channel_for", "progress_token", "progress_url", "read_token"]

TOKEN_SALT = "taskito.contrib.sse.progress"


def channel_for(job_id: Any) -> str:
    """The django-eventstream channel of a job's progress events."""
    jid = as_uuid(job_id)
    if jid is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return f"taskito-job-{jid}"


def progress_token(job_id: Any) -> str:
    """A signed token that lets its holder read this one job's progress stream for
    TASKITO["SSE_TOKEN_MAX_AGE"] seconds (10 minutes by default), whoever they are.
    Hand it out only to whoever may watch the job (for example the user who started it)."""
    jid = as_uuid(job_id)
    if jid is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return signing.dumps(str(jid), salt=TOKEN_SALT)


def read_token(token: str, max_age: float) -> str:
    """The job id a token was made for; signing.BadSignature (SignatureExpired included)
    when it is forged, damaged or too old."""
    value = signing.loads(token, salt=TOKEN_SALT, max_age=timedelta(seconds=max_age))
    if not isinstance(value, str):
        raise signing.BadSignature("not a progress token")
    return value


def progress_url(job_id: Any, *, token: bool = True) -> str:
    """The path of the job's progress stream, with a signed token unless `token=False`
    (then the reader needs the REST API's permissions)."""
    kwargs = {"job_id": str(as_uuid(job_id) or job_id)}
    try:
        path = reverse("taskito_sse:job_progress", kwargs=kwargs)
    except NoReverseMatch:  # served by the REST API's include instead
        path = reverse("taskito:job_progress", kwargs=kwargs)
    return f"{path}?token={progress_token(job_id)}" if token else path
