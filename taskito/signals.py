"""Signals sent by the queue and the worker (in the process where the change happened)."""

from __future__ import annotations

from django.dispatch import Signal

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
