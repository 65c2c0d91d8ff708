"""Operator verbs on Queue: cancel, retry and delete dead letters, replay, purge, pause."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from taskito.base import QueueBase
from taskito.enqueueing import EnqueueMixin, Plan
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid
from taskito.registry import TaskSpec, registry
from taskito.result import JobResult
from taskito.serialization import loads, unique_key_for
from taskito.states import REQUEUE_FROM, JobStatus, WorkflowStatus

PURGE_BATCH = 1000
#: what a dead letter and a job both keep of a call
_CALL_FIELDS = ("queue", "task_name", "args", "kwargs", "priority", "max_retries", "timeout_ms",
                "metadata")
#: options only the job row keeps
_JOB_ONLY_FIELDS = ("soft_timeout_ms", "result_ttl", "expires_at", "created_at", "unique_key")


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


class _Copy:
    """A fresh pending job with the task, arguments and every option of an earlier one."""

    def __init__(self, call: dict[str, Any], kept: dict[str, Any] | None,
                 spec: TaskSpec | None) -> None:
        self.call = call
        now = timezone.now()
        if kept is not None:
            soft_ms, ttl, key = kept["soft_timeout_ms"], kept["result_ttl"], kept["unique_key"]
            # the same expiry span, counted from the copy's creation
            expires = (None if kept["expires_at"] is None
                       else now + (kept["expires_at"] - kept["created_at"]))
        else:  # the job row was purged (its own result_ttl): the task's defaults
            soft_ms = _ms(spec.soft_timeout) if spec is not None else None
            ttl = round(spec.result_ttl) if spec and spec.result_ttl is not None else None
            expires = (now + timedelta(seconds=spec.expires)
                       if spec is not None and spec.expires is not None else None)
            key = (unique_key_for(call["task_name"], loads(call["args"]), loads(call["kwargs"]))
                   if spec is not None and spec.unique else None)
        self.soft_timeout_ms, self.result_ttl, self.expires_at = soft_ms, ttl, expires
        self.unique_key: str | None = key
        self.now = now

    def write(self, queue: QueueBase, *, scheduled_at: datetime | None = None
              ) -> tuple[uuid.UUID, bool]:
        """Insert the copy, due now (or at `scheduled_at`: a workflow step put back to wait):
        (its id, True), or (the active holder of its key, False)."""
        c, d = self.call, queue.dialect
        at = d.dt(self.now)
        due = at if scheduled_at is None else d.dt(scheduled_at)
        plan = Plan(task_name=c["task_name"], queue=c["queue"], priority=c["priority"],
                    max_retries=c["max_retries"], timeout_ms=c["timeout_ms"],
                    soft_timeout_ms=self.soft_timeout_ms, created_at=at, scheduled_at=due,
                    expires_at=d.dt(self.expires_at), result_ttl=self.result_ttl,
                    metadata=c["metadata"], dependencies=[])
        writer = cast(EnqueueMixin, queue)  # Queue has both parts
        job_id, created = writer.write_job(plan, c["args"], c["kwargs"], self.unique_key)
        return job_id, created


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else math.ceil(seconds * 1000)


class OperationsMixin(QueueBase):
    """State changes an operator (or an admin action, or a REST call) asks for."""

    def resume_step(self, cursor: Any, new: uuid.UUID, source_job: Any) -> None:
        """Overridden by WorkflowMixin: a copied workflow step resumes its workflow."""

    def step_cancelled(self, cursor: Any, job_id: uuid.UUID) -> None:
        """Overridden by WorkflowMixin: a cancelled workflow step ends its workflow."""

    def cancel_job(self, job_id: Any) -> bool:
        """Cancel a pending job (and, transitively, its pending dependents); False otherwise."""
        jid = as_uuid(job_id)
        if jid is None:
            return False
        d = self.dialect
        now = timezone.now()
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            if not d.cancel_pending(cursor, jid, now, "cancelled"):
                return False
            d.cancel_dependents(cursor, [jid], now, f"dependency cancelled: {jid}")
            self.step_cancelled(cursor, jid)  # a workflow step: its workflow ends cancelled
        return True

    def revoke_task(self, task_name: str) -> int:
        """Cancel every pending job of task `task_name` (each as `cancel_job` does: its
        pending dependents and its workflow too); returns how many were cancelled."""
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"task name must be a non-empty string, not {task_name!r}")
        pending = (self.job_model.objects.using(self.using)
                   .filter(task_name=task_name, status=JobStatus.PENDING).order_by())
        cancelled = 0
        while ids := list(pending.values_list("id", flat=True)[:PURGE_BATCH]):
            # a job claimed or cancelled meanwhile answers False and is not counted; the
            # next batch no longer sees it either way
            cancelled += sum(self.cancel_job(jid) for jid in ids)
        return cancelled

    def requeue_job(self, job_id: Any) -> bool:
        """Put a failed, dead or cancelled job back to pending, due now, as if new: retry
        count and attempts reset, error, result, finish time and expiry cleared; its dead
        letter is removed. False for any other job, a workflow step (use `retry_dead` or
        `replay`), a job waiting on a dependency that did not complete, or one whose unique
        key an active job holds."""
        jid = as_uuid(job_id)
        if jid is None:
            return False
        jobs = self.job_model.objects.using(self.using)
        blocked = (self.dependency_model.objects.using(self.using)
                   .filter(job_id=jid).exclude(depends_on__status=JobStatus.COMPLETE))
        if blocked.exists():
            return False
        now = timezone.now()
        d = self.dialect
        try:
            with transaction.atomic(using=self.using), d.cursor() as cursor:
                moved = jobs.filter(id=jid, status__in=REQUEUE_FROM,
                                    workflow_id__isnull=True).update(
                    status=JobStatus.PENDING, scheduled_at=now, retry_count=0, attempts=0,
                    progress=0, error=None, result=None, partial_result=None,
                    started_at=None, completed_at=None, worker_id=None, claim_token=None,
                    cancel_requested=False, expires_at=None)  # asked to run: no expiry
                if moved:
                    self.dead_letter_model.objects.using(self.using).filter(
                        original_job_id=jid).delete()
                    d.notify_new_jobs(cursor)  # wake idle workers, as an enqueue does
        except IntegrityError:  # an active job holds its unique key
            return False
        return bool(moved)

    def cancel_running_job(self, job_id: Any) -> bool:
        """Ask a running job to stop: `current_job.check_cancelled()` raises in the task."""
        jid = as_uuid(job_id)
        if jid is None:
            return False
        return bool(self.job_model.objects.using(self.using)
                    .filter(id=jid, status=JobStatus.RUNNING).update(cancel_requested=True))

    def retry_dead(self, dead_id: Any) -> uuid.UUID:
        """Enqueue a dead letter again as a new job with every option the job had, and
        remove the dead letter. If an active job holds the job's unique key, that job's id
        comes back instead (as an enqueue with that key would)."""
        did = as_uuid(dead_id)
        letter = None if did is None else (
            self.dead_letter_model.objects.using(self.using).filter(id=did)
            .values(*_CALL_FIELDS, "original_job_id").first())
        if did is None or letter is None:
            raise JobNotFound(f"dead letter {dead_id} does not exist")
        copy = self._copy_of(letter, letter["original_job_id"])
        d = self.dialect
        # Read above, write here: deleting the dead letter first takes the write lock (a
        # deferred SQLite transaction that read first could not) and lets one retry win.
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            if not d.delete_dead_letter(cursor, did):  # just retried by someone else
                raise JobNotFound(f"dead letter {dead_id} does not exist")
            job_id, created = copy.write(self)
            if created:  # a workflow step: resume the workflow
                self.resume_step(cursor, job_id, letter["original_job_id"])
        return job_id

    def _copy_of(self, call: dict[str, Any], source_id: uuid.UUID) -> _Copy:
        """What a copy of a job needs: the call and options of `call` (a dead letter or a
        job), plus what only the job row keeps (soft timeout, result TTL, expiry, unique
        key), read from job `source_id`; the task's defaults if that row was purged."""
        kept = (self.job_model.objects.using(self.using).filter(id=source_id)
                .values(*_JOB_ONLY_FIELDS).first())
        return _Copy(call, kept, registry.find(call["task_name"]))

    def copy_job(self, job_id: uuid.UUID, *, scheduled_at: datetime | None = None
                 ) -> uuid.UUID | None:
        """A fresh pending copy of job `job_id` with every option it had (scheduled at
        `scheduled_at`, else now); None when that job does not exist."""
        source = (self.job_model.objects.using(self.using).filter(id=job_id)
                  .values(*_CALL_FIELDS).first())
        if source is None:
            return None
        new, _ = self._copy_of(source, job_id).write(self, scheduled_at=scheduled_at)
        return new

    def delete_dead(self, dead_id: Any) -> bool:
        did = as_uuid(dead_id)
        if did is None:
            return False
        deleted, _ = self.dead_letter_model.objects.using(self.using).filter(id=did).delete()
        return bool(deleted)

    def replay(self, job_id: Any) -> JobResult:
        """Run a job again as a new job with the same task, arguments and options (a
        ReplayHistory row links them). If an active job holds its unique key, that job's
        handle comes back (`created` False) and no history is written."""
        jid = as_uuid(job_id)
        source = None if jid is None else (
            self.job_model.objects.using(self.using).filter(id=jid).values(*_CALL_FIELDS)
            .first())
        if jid is None or source is None:
            raise JobNotFound(f"job {job_id} does not exist")
        copy = self._copy_of(source, jid)
        with transaction.atomic(using=self.using), self.dialect.cursor() as cursor:
            new, created = copy.write(self)
            if not created:
                return self.handle(new, created=False)
            self.replay_model.objects.using(self.using).create(
                original_job_id=jid, replay_job_id=new, replayed_at=timezone.now())
            self.resume_step(cursor, new, jid)
        return self.handle(new)

    def purge_completed(self, older_than: float = 86400) -> int:
        """Delete completed jobs finished more than `older_than` seconds ago, with their
        errors, logs, metrics, dependency links and replay history."""
        cutoff = timezone.now() - timedelta(seconds=_seconds("older_than", older_than))
        self._purge_workflows(cutoff, WorkflowStatus.COMPLETE, WorkflowStatus.CANCELLED)
        return self.purge_jobs(
            self.job_model.objects.using(self.using)
            .finished_before(cutoff, JobStatus.COMPLETE).values_list("id", flat=True))

    def _purge_workflows(self, cutoff: Any, *statuses: WorkflowStatus) -> None:
        """Workflow rows that ended before `cutoff` (their steps go as jobs do; a step left
        behind is a plain job once its workflow row is gone)."""
        from taskito.models import Workflow

        Workflow.objects.using(self.using).filter(
            status__in=statuses, finished_at__lt=cutoff).delete()

    def purge_dead(self, older_than: float = 86400) -> int:
        """Delete dead letters (and dead jobs) that failed more than `older_than` seconds ago;
        returns the number of dead letters deleted."""
        cutoff = timezone.now() - timedelta(seconds=_seconds("older_than", older_than))
        deleted = 0
        letters = self.dead_letter_model.objects.using(self.using)
        while True:
            ids = list(letters.filter(failed_at__lt=cutoff).order_by()
                       .values_list("id", flat=True)[:PURGE_BATCH])
            if not ids:
                break
            deleted += letters.filter(id__in=ids).delete()[0]
        self.purge_jobs(self.job_model.objects.using(self.using)
                        .finished_before(cutoff, JobStatus.DEAD).values_list("id", flat=True))
        self._purge_workflows(cutoff, WorkflowStatus.FAILED)
        return deleted

    def purge_jobs(self, ids_query: Iterable[Any]) -> int:
        """Delete the jobs a values_list('id') query selects, in short batches, children first.

        Each batch is its own transaction, so a purge of 100,000 jobs never holds the write
        lock for long."""
        total = 0
        d = self.dialect
        query: Any = ids_query
        if hasattr(query, "order_by"):
            # no ORDER BY: the model's default (-created_at) would sort every matching row
            # for each batch, which made purging a million jobs quadratic
            query = query.order_by()
        while True:
            ids = list(query[:PURGE_BATCH])
            if not ids:
                return total
            with transaction.atomic(using=self.using), d.cursor() as cursor:
                total += d.delete_jobs(cursor, ids)
            if len(ids) < PURGE_BATCH:
                return total

    # -- queues ----------------------------------------------------------------------------
    def pause(self, name: str) -> None:
        """Stop every worker from claiming jobs of queue `name` (persisted)."""
        self._set_paused(name, True)

    def resume(self, name: str) -> None:
        """Let workers claim jobs of queue `name` again."""
        self._set_paused(name, False)

    def _set_paused(self, name: str, paused: bool) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"queue name must be a non-empty string, not {name!r}")
        self.dialect.set_paused(name, paused, timezone.now())

    def paused_queues(self) -> list[str]:
        return list(self.queue_state_model.objects.using(self.using).filter(paused=True)
                    .values_list("name", flat=True))

