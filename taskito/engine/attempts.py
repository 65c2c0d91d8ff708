"""The life of one attempt: claim, progress and logs, finish (in batches), hand-back and the
rescue of attempts whose worker died.

Every write names the attempt's claim token: a worker that was declared dead and comes back
updates nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito import signals
from taskito.engine.base import EngineBase
from taskito.engine.jobs import ClaimedJob, Outcome, OutcomeKind
from taskito.engine.throttles import release_slots
from taskito.ids import new_id
from taskito.serialization import UNSET, dumps
from taskito.states import JobStatus

logger = logging.getLogger(__name__)

_ENDS = {"dead": JobStatus.DEAD, "cancelled": JobStatus.CANCELLED}
_LABELS = {"complete": "complete", "retry": "pending", "dead": "dead", "cancelled": "cancelled"}


class AttemptsMixin(EngineBase):
    """Claim, progress, logs and finishing: what a worker does to the jobs it runs."""

    def claim(self, *, worker_id: str, limit: int, queues: Sequence[str] | None = None,
              now: datetime | None = None) -> list[ClaimedJob]:
        """Mark up to `limit` ready jobs running for this worker and return them in claim
        order (priority, then due time, then id)."""
        if limit <= 0:
            return []
        d = self.dialect
        token = uuid.uuid4().hex
        rows = d.claim(queues=queues, limit=limit, now=now or timezone.now(),
                       worker_id=worker_id, token=token)
        jobs = [ClaimedJob.from_row(r, token, d.to_uuid) for r in rows]
        jobs.sort(key=lambda j: (-j.priority, j.scheduled_at, j.id))
        return jobs

    def finish(self, outcomes: Sequence[Outcome], now: datetime | None = None) -> int:
        """Write a batch of outcomes in one transaction; returns how many were applied.
        Signals go out after the commit, each receiver behind a guard."""
        if not outcomes:
            return 0
        d = self.dialect
        now = now or timezone.now()
        at = d.dt(now)
        done = [o for o in outcomes if o.kind == "complete"]
        applied: list[Outcome] = []
        dead_ids: dict[uuid.UUID, uuid.UUID] = {}
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            if done:
                landed = d.complete_jobs(cursor, [(o.job.id, o.job.token, o.result)
                                                  for o in done], at)
                applied.extend(o for o in done if o.job.id in landed)
                for o in done:
                    if o.job.id not in landed:
                        _superseded(o)
            for o in outcomes:
                if o.kind != "complete" and self._finish_one(cursor, o, at):
                    applied.append(o)
                    if o.kind == "dead":
                        dead_ids[o.job.id] = new_id()
                        d.insert_dead_letter(cursor, dead_ids[o.job.id], o.job.id, at)
            ended = [o for o in applied if o.kind in _ENDS]
            d.notify_finished(cursor, [o.job.id for o in ended])
            for o in ended:
                verb = "failed" if o.kind == "dead" else "cancelled"
                d.cancel_dependents(cursor, [o.job.id], now, f"dependency {verb}: {o.job.id}")
            release_slots(d, [o.job.task_name for o in applied])
            d.insert_metrics(cursor, [(d.uid(o.job.id), o.job.task_name, o.job.queue,
                                       o.kind == "complete", o.wall_ms, at) for o in applied])
        self._finished_signals(applied, dead_ids)
        return len(applied)

    def _finish_one(self, cursor: Any, o: Outcome, at: Any) -> bool:
        d = self.dialect
        if o.kind == "retry":
            moved = d.retry_job(cursor, o.job.id, o.job.token, o.retry_at, o.error)
        else:
            moved = d.end_job(cursor, o.job.id, o.job.token, _ENDS[o.kind], o.error, at)
        if not moved:
            _superseded(o)
            return False
        if o.kind in ("retry", "dead") and o.error is not None:
            d.insert_error(cursor, o.job.id, o.job.attempts, o.error, o.traceback, at)
        return True

    def _finished_signals(self, applied: Sequence[Outcome],
                          dead_ids: dict[uuid.UUID, uuid.UUID]) -> None:
        if signals.job_finished.has_listeners():
            for o in applied:
                signals.send_guarded(signals.job_finished, sender=type(self), job_id=o.job.id,
                                     task_name=o.job.task_name, queue=o.job.queue,
                                     status=_LABELS[o.kind], error=o.error)
        if dead_ids and signals.job_dead.has_listeners():
            for o in applied:
                if o.job.id in dead_ids:
                    signals.send_guarded(signals.job_dead, sender=type(self), job_id=o.job.id,
                                         dead_letter_id=dead_ids[o.job.id],
                                         task_name=o.job.task_name, error=o.error)

    def requeue(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running attempts back to pending at once, without spending a retry (a worker
        that stops before they finished); returns how many were still this attempt's."""
        if not jobs:
            return 0
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            count = d.requeue(cursor, [(j.id, j.token) for j in jobs])
            if count:
                release_slots(d, [j.task_name for j in jobs])
        return count

    def rescue_lost_jobs(self, stale_after: float, now: datetime | None = None) -> int:
        """Put the running jobs of workers silent for `stale_after` seconds through the
        failure path ("worker lost": the attempt counts, so a job that kills its worker ends
        in the dead-letter queue after its retries); returns how many were rescued."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=stale_after)
        dead, rows = self.dialect.lost_jobs(cutoff)
        outcomes = [self._lost(row, now) for row in rows]
        applied = self.finish(outcomes, now=now) if outcomes else 0
        self.dialect.delete_stale_workers(dead, cutoff)
        for o in outcomes:
            logger.warning("rescued job=%s task=%s from lost worker %s: %s", o.job.id,
                           o.job.task_name, o.error and o.error.split("worker ")[-1], o.kind)
        return applied

    def _lost(self, row: Sequence[Any], now: datetime) -> Outcome:
        *claim, token, worker_id = row
        job = ClaimedJob.from_row(claim, token, self.dialect.to_uuid)
        kind: OutcomeKind = "retry" if job.retry_count < job.max_retries else "dead"
        return Outcome(job, kind, 0.0, retry_at=now,
                       error=f"worker lost: worker {worker_id} stopped while running the job")

    # -- from inside a running task --------------------------------------------------------
    def set_progress(self, job_id: uuid.UUID, token: str, progress: int,
                     partial: Any = UNSET) -> bool:
        """Record progress of a running attempt, and its partial result when given; False if
        the attempt no longer owns the job."""
        extra: dict[str, Any] = {}
        if partial is UNSET:
            changed = self.dialect.set_progress(job_id, token, progress)
        else:
            changed = self.dialect.set_progress(job_id, token, progress,
                                                dumps(partial, "partial result"),
                                                with_partial=True)
            extra["partial"] = partial
        if changed and signals.job_progress.has_listeners():
            signals.send_guarded(signals.job_progress, sender=type(self), job_id=job_id,
                                 progress=progress, **extra)
        return changed

    def add_log(self, job_id: uuid.UUID, task_name: str, level: str, message: str,
                extra: dict[str, Any] | None = None) -> None:
        """Store one TaskLog row."""
        extra_json = None if extra is None else dumps(extra, "log extra")
        self.queue.log_model.objects.using(self.using).create(
            job_id=job_id, task_name=task_name, level=level, message=message, extra=extra_json,
            logged_at=timezone.now())

    def is_cancel_requested(self, job_id: uuid.UUID) -> bool:
        return bool(self.queue.job_model.objects.using(self.using)
                    .filter(id=job_id, cancel_requested=True).exists())


def _superseded(o: Outcome) -> None:
    logger.warning("superseded job=%s task=%s token=%s: a newer attempt owns the job; "
                   "outcome %s dropped", o.job.id, o.job.task_name, o.job.token, o.kind)
