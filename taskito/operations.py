"""Operator verbs on Queue: cancel, retry and delete dead letters, replay, purge, pause."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.base import QueueBase
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid, new_id
from taskito.result import JobResult
from taskito.states import JobStatus, WorkflowStatus

PURGE_BATCH = 1000


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


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

    def cancel_running_job(self, job_id: Any) -> bool:
        """Ask a running job to stop: `current_job.check_cancelled()` raises in the task."""
        jid = as_uuid(job_id)
        if jid is None:
            return False
        return bool(self.job_model.objects.using(self.using)
                    .filter(id=jid, status=JobStatus.RUNNING).update(cancel_requested=True))

    def retry_dead(self, dead_id: Any) -> uuid.UUID:
        """Enqueue a dead letter again as a new job and remove it from the dead letters."""
        did = as_uuid(dead_id)
        if did is None:
            raise JobNotFound(f"dead letter {dead_id} does not exist")
        new = new_id()
        d = self.dialect
        # Copy, then delete: both statements write, so the transaction holds the write lock
        # from its first statement (a deferred SQLite transaction that read first could not).
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            copied = d.copy_job(cursor, new=new, source=did, at=timezone.now(), from_dead=True)
            original = (self.dead_letter_model.objects.using(self.using).filter(id=did)
                        .values_list("original_job_id", flat=True).first())
            if not d.delete_dead_letter(cursor, did) or not copied:  # unknown, or just retried
                raise JobNotFound(f"dead letter {dead_id} does not exist")
            self.resume_step(cursor, new, original)  # a workflow step: resume the workflow
        return new

    def delete_dead(self, dead_id: Any) -> bool:
        did = as_uuid(dead_id)
        if did is None:
            return False
        deleted, _ = self.dead_letter_model.objects.using(self.using).filter(id=did).delete()
        return bool(deleted)

    def replay(self, job_id: Any) -> JobResult:
        """Run a job again as a new job with the same task, arguments and options."""
        jid = as_uuid(job_id)
        if jid is None:
            raise JobNotFound(f"job {job_id} does not exist")
        new = new_id()
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            if not d.copy_job(cursor, new=new, source=jid, at=timezone.now()):
                raise JobNotFound(f"job {job_id} does not exist")
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
            ids = list(letters.filter(failed_at__lt=cutoff)
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

