"""The worker's half of Queue: claim jobs, record progress and logs, and finish attempts.

Finishes are written in batches (one transaction for every outcome the worker has collected),
and every write names the attempt's claim token: a worker that was declared dead and comes
back updates nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from taskito import signals
from taskito.db.base import DEAD_LETTER, JOB, JOB_ERROR, ClaimedJob
from taskito.ids import new_id
from taskito.operations import OperationsMixin
from taskito.serialization import UNSET, dumps

#: one line per job event (received, succeeded, retried, failed, dead, cancelled, ...)
logger = logging.getLogger("taskito.job")

OutcomeKind = Literal["complete", "retry", "dead", "cancelled"]


@dataclass(slots=True)
class Outcome:
    """How one attempt ended, as the executor decided it."""

    job: ClaimedJob
    kind: OutcomeKind
    wall_ms: float
    result: str | None = None  # JSON text
    error: str | None = None
    traceback: str = ""
    retry_at: datetime | None = None


_RETRY = (f"UPDATE {JOB} SET status = 0, scheduled_at = %s, retry_count = retry_count + 1, "
          f"error = %s, worker_id = NULL, claim_token = NULL "
          f"WHERE id = %s AND claim_token = %s AND status = 1")
_END = (f"UPDATE {JOB} SET status = %s, error = %s, completed_at = %s "
        f"WHERE id = %s AND claim_token = %s AND status = 1")
_DEAD_LETTER = (
    f"INSERT INTO {DEAD_LETTER} (id, original_job_id, queue, task_name, args, kwargs, priority, "
    f"max_retries, timeout_ms, error, retry_count, failed_at, metadata) "
    f"SELECT %s, id, queue, task_name, args, kwargs, priority, max_retries, timeout_ms, error, "
    f"retry_count, %s, metadata FROM {JOB} WHERE id = %s"
)
_ERROR = (f"INSERT INTO {JOB_ERROR} (job_id, attempt, error, traceback, failed_at) "
          f"VALUES (%s, %s, %s, %s, %s)")


class ExecutionMixin(OperationsMixin):
    """Claim, progress, logs and finishing: what a worker asks of the queue."""

    def claim(self, *, worker_id: str, limit: int, queues: Sequence[str] | None = None,
              now: datetime | None = None) -> list[ClaimedJob]:
        """Mark up to `limit` ready jobs running for this worker and return them."""
        if limit <= 0:
            return []
        return self.backend.claim(queues=queues, limit=limit, now=now or timezone.now(),
                                  worker_id=worker_id, token=uuid.uuid4().hex)

    def finish(self, outcomes: Sequence[Outcome], now: datetime | None = None) -> int:
        """Write a batch of outcomes in one transaction; returns how many were applied."""
        if not outcomes:
            return 0
        now = now or timezone.now()
        b = self.backend
        at = b.dt(now)
        done = [o for o in outcomes if o.kind == "complete"]
        others = [o for o in outcomes if o.kind != "complete"]
        applied: list[Outcome] = []
        dead_ids: dict[uuid.UUID, uuid.UUID] = {}
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            if done:
                landed = b.complete_jobs(cursor, [(o.job.id, o.job.token, o.result)
                                                  for o in done], at)
                for o in done:
                    if o.job.id in landed:
                        applied.append(o)
                    else:
                        logger.warning("superseded job=%s task=%s: a newer attempt owns the "
                                       "job; result dropped", o.job.id, o.job.task_name)
            for o in others:
                if self._finish_one(cursor, o, at):
                    applied.append(o)
                    if o.kind == "dead":
                        dead_ids[o.job.id] = new_id()
                        cursor.execute(_DEAD_LETTER, [b.uid(dead_ids[o.job.id]), at,
                                                      b.uid(o.job.id)])
            b.notify_finished(cursor, [o.job.id for o in applied
                                       if o.kind in ("dead", "cancelled")])
            for o in applied:
                if o.kind in ("dead", "cancelled"):
                    verb = "failed" if o.kind == "dead" else "cancelled"
                    self.cancel_dependents([o.job.id], f"dependency {verb}: {o.job.id}")
            self.attempts_ended([o.job.task_name for o in applied])
            b.insert_metrics(cursor, [(b.uid(o.job.id), o.job.task_name, o.job.queue,
                                       o.kind == "complete", o.wall_ms, at) for o in applied])
        self._finished_signals(applied, dead_ids)
        _log_outcomes(applied, dead_ids, now)
        return len(applied)

    def _finish_one(self, cursor: Any, o: Outcome, at: Any) -> bool:
        b = self.backend
        key = (b.uid(o.job.id), o.job.token)
        if o.kind == "retry":
            cursor.execute(_RETRY, [b.dt(o.retry_at), o.error, *key])
        else:
            status = 4 if o.kind == "dead" else 5
            cursor.execute(_END, [status, o.error, at, *key])
        if cursor.rowcount != 1:
            logger.warning("superseded job=%s task=%s token=%s: a newer attempt owns the job; "
                           "outcome %s dropped", o.job.id, o.job.task_name, o.job.token, o.kind)
            return False
        if o.kind in ("retry", "dead") and o.error is not None:
            cursor.execute(_ERROR, [key[0], o.job.attempts, o.error, o.traceback, at])
        return True

    def _finished_signals(self, applied: Sequence[Outcome],
                          dead_ids: dict[uuid.UUID, uuid.UUID]) -> None:
        if signals.job_finished.has_listeners():
            labels = {"complete": "complete", "retry": "pending", "dead": "dead",
                      "cancelled": "cancelled"}
            for o in applied:
                signals.job_finished.send(sender=self.__class__, job_id=o.job.id,
                                          task_name=o.job.task_name, queue=o.job.queue,
                                          status=labels[o.kind], error=o.error)
        if dead_ids and signals.job_dead.has_listeners():
            for o in applied:
                if o.job.id in dead_ids:
                    signals.job_dead.send(sender=self.__class__, job_id=o.job.id,
                                          dead_letter_id=dead_ids[o.job.id],
                                          task_name=o.job.task_name, error=o.error)

    def attempts_ended(self, task_names: Sequence[str]) -> None:
        """Called in the transaction that ends attempts (finish, requeue); the throttling
        part gives their concurrency slots back."""

    # -- from inside a running task --------------------------------------------------------
    def set_progress(self, job_id: uuid.UUID, token: str, progress: int,
                     partial: Any = UNSET) -> bool:
        """Record progress of a running attempt, and its partial result when given; False if
        the attempt no longer owns the job."""
        sets = "progress = %s"
        params: list[Any] = [progress]
        extra: dict[str, Any] = {}
        if partial is not UNSET:
            sets += ", partial_result = %s"
            params.append(dumps(partial, "partial result"))
            extra["partial"] = partial
        with self.backend.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {JOB} SET {sets} WHERE id = %s AND claim_token = %s "
                           f"AND status = 1", [*params, self.backend.uid(job_id), token])
            changed = cursor.rowcount == 1
        if changed and signals.job_progress.has_listeners():
            signals.job_progress.send(sender=self.__class__, job_id=job_id, progress=progress,
                                      **extra)
        return changed

    def add_log(self, job_id: uuid.UUID, task_name: str, level: str, message: str,
                extra: dict[str, Any] | None = None) -> None:
        """Store one TaskLog row."""
        extra_json = None if extra is None else dumps(extra, "log extra")
        self.log_model.objects.using(self.using).create(
            job_id=job_id, task_name=task_name, level=level, message=message, extra=extra_json,
            logged_at=timezone.now())

    def is_cancel_requested(self, job_id: uuid.UUID) -> bool:
        return bool(self.job_model.objects.using(self.using)
                    .filter(id=job_id, cancel_requested=True).exists())


def log_received(jobs: Sequence[ClaimedJob]) -> None:
    """One INFO line per claimed job that is about to run (not for those deferred by a
    throttle or for an unknown task, which are claimed again later)."""
    if jobs and logger.isEnabledFor(logging.INFO):  # checked once per batch
        for job in jobs:
            logger.info("received job=%s task=%s queue=%s attempt=%d", job.id, job.task_name,
                        job.queue, job.attempts)


def _log_outcomes(applied: Sequence[Outcome], dead_ids: dict[uuid.UUID, uuid.UUID],
                  now: datetime) -> None:
    """One line per recorded outcome: `succeeded` and `cancelled` at INFO, `retried` at
    WARNING, `failed` (an error not retried although retries were left) and `dead` (retries
    used up) at ERROR; the last two name their dead letter."""
    info = logger.isEnabledFor(logging.INFO)  # once per batch: the per-job cost stays small
    for o in applied if info else [o for o in applied if o.kind in ("retry", "dead")]:
        job, seconds = o.job, o.wall_ms / 1000
        if o.kind == "complete":
            if info:
                logger.info("succeeded job=%s task=%s attempt=%d duration=%.3fs", job.id,
                            job.task_name, job.attempts, seconds)
        elif o.kind == "retry":
            delay = (o.retry_at - now).total_seconds() if o.retry_at is not None else 0.0
            logger.warning("retried job=%s task=%s attempt=%d duration=%.3fs retry_in=%.2fs "
                           "error=%r", job.id, job.task_name, job.attempts, seconds,
                           max(delay, 0.0), _short(o.error))
        elif o.kind == "dead":
            word = "failed" if job.retry_count < job.max_retries else "dead"
            logger.error("%s job=%s task=%s attempt=%d duration=%.3fs dead_letter=%s "
                         "error=%r", word, job.id, job.task_name, job.attempts, seconds,
                         dead_ids.get(job.id), _short(o.error))
        elif info:
            logger.info("cancelled job=%s task=%s attempt=%d duration=%.3fs", job.id,
                        job.task_name, job.attempts, seconds)


def _short(error: str | None, limit: int = 500) -> str | None:
    """An error message cut to `limit` characters, so one log line stays one line."""
    if error is None or len(error) <= limit:
        return error
    return error[:limit] + "..."
