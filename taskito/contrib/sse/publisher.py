"""With EVENTSTREAM_REDIS, each process that changes a job publishes its progress events
itself (django-eventstream carries them to every web process through Redis), and no relay
runs: both at once would send every event twice.

The receivers hang on taskito's signals: a worker's job_started, job_progress and
job_finished. A transition without a signal (a pending job cancelled from a web request, a
job rescued from a lost worker) reaches open streams through their periodic re-check.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings

from taskito import signals
from taskito.states import JobStatus

logger = logging.getLogger("taskito.sse")


def uses_redis() -> bool:
    """Whether django-eventstream carries events between processes (EVENTSTREAM_REDIS)."""
    return bool(getattr(settings, "EVENTSTREAM_REDIS", None))


def connect_if_redis() -> None:
    if not uses_redis():
        return
    signals.job_started.connect(_on_started, dispatch_uid="taskito_sse_started")
    signals.job_progress.connect(_on_progress, dispatch_uid="taskito_sse_progress")
    signals.job_finished.connect(_on_finished, dispatch_uid="taskito_sse_finished")


def _publish(job_id: uuid.UUID, status: int, progress: int | None) -> None:
    from taskito.contrib.sse.relay import publish

    try:
        if progress is None:  # only the row knows (a retried attempt keeps its progress)
            from taskito import queue

            state = queue.job_progress([job_id]).get(job_id)
            if state is None:
                return
            progress = state[1]
        publish(job_id, (status, progress))
    except Exception:  # never let a progress event break the job
        logger.warning("could not publish progress of job %s", job_id, exc_info=True)


def _on_started(*, job_id: uuid.UUID, attempt: int = 1, **kwargs: Any) -> None:
    _publish(job_id, JobStatus.RUNNING, 0 if attempt <= 1 else None)


def _on_progress(*, job_id: uuid.UUID, progress: int, **kwargs: Any) -> None:
    _publish(job_id, JobStatus.RUNNING, progress)


def _on_finished(*, job_id: uuid.UUID, status: str, **kwargs: Any) -> None:
    code = JobStatus.parse(status)
    _publish(job_id, code, 100 if code == JobStatus.COMPLETE else None)
