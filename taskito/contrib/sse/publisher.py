"""With EVENTSTREAM_REDIS, each process that changes a job publishes its progress events
itself (django-eventstream carries them to every web process through Redis), and no relay
runs: both at once would send every event twice.

The receivers hang on taskito's signals: a worker's job_started, job_progress and
job_finished. They only queue the event; one thread per process (started by the first
event) sends them in order, so a slow or unreachable Redis never holds up a job: when 10,000
events wait, new ones are dropped (and logged). Events still queued when the process exits
get 5 seconds to go out. A transition without a signal (a pending job cancelled from a web
request, a job rescued from a lost worker) reaches open streams through their periodic
re-check.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import uuid
from typing import Any

from django.conf import settings

from taskito import signals
from taskito.contrib.endpoints import progress_event
from taskito.contrib.sse import channel_for
from taskito.serialization import UNSET
from taskito.states import JobStatus

logger = logging.getLogger("taskito.sse")


def uses_redis() -> bool:
    """Whether django-eventstream carries events between processes (EVENTSTREAM_REDIS)."""
    return hasattr(settings, "EVENTSTREAM_REDIS")  # what django-eventstream itself checks


def connect_if_redis() -> None:
    if not uses_redis():
        return
    signals.job_started.connect(_on_started, dispatch_uid="taskito_sse_started")
    signals.job_progress.connect(_on_progress, dispatch_uid="taskito_sse_progress")
    signals.job_finished.connect(_on_finished, dispatch_uid="taskito_sse_finished")


def _publish(job_id: uuid.UUID, status: int, progress: int | None, partial: Any) -> None:
    from django_eventstream import send_event

    try:
        if progress is None:  # only the row knows (a retried attempt keeps its progress)
            from taskito import queue as default_queue

            state = default_queue.job_progress([job_id]).get(job_id)
            if state is None:
                return
            progress = state[1]
        # without `partial`, the stream keeps the partial result its client last got
        send_event(channel_for(job_id), "message", progress_event(status, progress, partial))
    except Exception:  # never let a progress event break the job
        logger.warning("could not publish progress of job %s", job_id, exc_info=True)


Event = tuple[uuid.UUID, int, int | None, Any]

_outbox: queue.Queue[Event | None] = queue.Queue(maxsize=10_000)
_sender_lock = threading.Lock()
_sender: threading.Thread | None = None
_dropped = 0


def _send(event: Event) -> None:
    """Queue an event for the sender thread; never blocks."""
    global _sender, _dropped
    with _sender_lock:
        if _sender is None or not _sender.is_alive():
            _sender = threading.Thread(target=_send_forever, name="taskito-sse-publisher",
                                       daemon=True)
            _sender.start()
            atexit.register(_flush)
    try:
        _outbox.put_nowait(event)
    except queue.Full:
        _dropped += 1
        if _dropped % 1000 == 1:
            logger.warning("progress events are not going out fast enough: %d dropped",
                           _dropped)


def _send_forever() -> None:
    while (event := _outbox.get()) is not None:
        _publish(*event)


def _flush(timeout: float = 5.0) -> None:
    """At exit: let the queued events go out (for `timeout` seconds at most)."""
    global _sender
    with _sender_lock:
        sender, _sender = _sender, None
    if sender is not None and sender.is_alive():
        try:
            _outbox.put(None, timeout=timeout)
        except queue.Full:
            return
        sender.join(timeout)


def _on_started(*, job_id: uuid.UUID, attempt: int = 1, **kwargs: Any) -> None:
    _send((job_id, JobStatus.RUNNING, 0 if attempt <= 1 else None, UNSET))


def _on_progress(*, job_id: uuid.UUID, progress: int, partial: Any = UNSET,
                 **kwargs: Any) -> None:
    _send((job_id, JobStatus.RUNNING, progress, partial))


def _on_finished(*, job_id: uuid.UUID, status: str, **kwargs: Any) -> None:
    code = JobStatus.parse(status)
    _send((job_id, code, 100 if code == JobStatus.COMPLETE else None, UNSET))
