"""Signals sent by the queue and the worker (in the process where the change happened)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

#: kwargs: job_id, task_name, queue (sent after the enqueueing transaction commits)
job_enqueued = Signal()
#: kwargs: job_id, task_name, queue, attempt (sent by the worker before the task runs)
job_started = Signal()
#: kwargs: job_id, progress
job_progress = Signal()
#: kwargs: job_id, task_name, queue, status ("complete", "pending" for a retry, "dead",
#: "cancelled"), error (None on success)
job_finished = Signal()
#: kwargs: job_id, dead_letter_id, task_name, error
job_dead = Signal()


def send_guarded(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send `signal`; a receiver that raises is logged with the job id and the others still
    run. User code reached through a signal can never stop a worker or undo a write."""
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, BaseException):
            logger.error("signal receiver failed receiver=%s job=%s error=%s",
                         getattr(receiver, "__qualname__", receiver), kwargs.get("job_id"),
                         f"{type(result).__name__}: {result}", exc_info=result)
