"""Operator verbs on Queue: cancel, retry and delete dead letters, replay, purge, pause."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.db.base import DEPENDENCY, JOB, JOB_ERROR, METRIC
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid, new_id
from taskito.inspection import InspectionMixin
from taskito.result import JobResult
from taskito.states import JobStatus

PURGE_BATCH = 1000
_CHILDREN = (
    f"DELETE FROM {JOB_ERROR} WHERE job_id IN ({{marks}})",
    "DELETE FROM taskito_task_log WHERE job_id IN ({marks})",
    f"DELETE FROM {METRIC} WHERE job_id IN ({{marks}})",
    f"DELETE FROM {DEPENDENCY} WHERE job_id IN ({{marks}}) OR depends_on_id IN ({{marks}})",
    "DELETE FROM taskito_replay_history WHERE original_job_id IN ({marks}) "
    "OR replay_job_id IN ({marks})",
    f"DELETE FROM {JOB} WHERE id IN ({{marks}})",
)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


class OperationsMixin(InspectionMixin):
    """State changes an operator (or an admin action, or a REST call) asks for."""

    def cancel_job(self, job_id: Any) -> bool:
        """Cancel a pending job (and, transitively, its pending dependents); False otherwise."""
        jid = as_uuid(job_id)
        if jid is None:
            return False
        now = self.backend.dt(timezone.now())
        with transaction.atomic(using=self.using), self.backend.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {JOB} SET status = 5, completed_at = %s, error = %s "
                           f"WHERE id = %s AND status = 0", [now, "cancelled",
                                                             self.backend.uid(jid)])
            if cursor.rowcount != 1:
                return False
            self.cancel_dependents([jid], f"dependency cancelled: {jid}")
        return True

    def cancel_dependents(self, roots: Sequence[uuid.UUID], reason: str) -> int:
        """Cancel the pending jobs that wait (directly or not) on `roots`."""
        b = self.backend
        now = b.dt(timezone.now())
        total = 0
        frontier = list(roots)
        with b.connection.cursor() as cursor:
            while frontier:
                marks = ", ".join(["%s"] * len(frontier))
                cursor.execute(
                    f"SELECT d.job_id FROM {DEPENDENCY} d JOIN {JOB} j ON j.id = d.job_id "
                    f"WHERE d.depends_on_id IN ({marks}) AND j.status = 0",
                    [b.uid(i) for i in frontier])
                children = list(dict.fromkeys(b.to_uuid(r[0]) for r in cursor.fetchall()))
                if not children:
                    break
                cursor.executemany(
                    f"UPDATE {JOB} SET status = 5, completed_at = %s, error = %s "
                    f"WHERE id = %s AND status = 0",
                    [(now, reason, b.uid(c)) for c in children])
                total += len(children)
                frontier = children
        return total

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
        with transaction.atomic(using=self.using):
            dead = (self.dead_letter_model.objects.using(self.using)
                    .filter(id=did).values().first()) if did else None
            if dead is None:
                raise JobNotFound(f"dead letter {dead_id} does not exist")
            deleted, _ = (self.dead_letter_model.objects.using(self.using)
                          .filter(id=did).delete())
            if not deleted:  # someone else retried it a moment ago
                raise JobNotFound(f"dead letter {dead_id} does not exist")
            job_id = self._copy_job(dead, timeout_ms=dead["timeout_ms"])
        return job_id

    def delete_dead(self, dead_id: Any) -> bool:
        did = as_uuid(dead_id)
        if did is None:
            return False
        deleted, _ = self.dead_letter_model.objects.using(self.using).filter(id=did).delete()
        return bool(deleted)

    def replay(self, job_id: Any) -> JobResult:
        """Run a job again as a new job with the same task, arguments and options."""
        jid = as_uuid(job_id)
        with transaction.atomic(using=self.using):
            job = (self.job_model.objects.using(self.using).filter(id=jid).values().first()
                   if jid else None)
            if job is None:
                raise JobNotFound(f"job {job_id} does not exist")
            new = self._copy_job(job, timeout_ms=job["timeout_ms"])
            self.replay_model.objects.using(self.using).create(
                original_job_id=jid, replay_job_id=new, replayed_at=timezone.now())
        return self.handle(new)

    def _copy_job(self, src: dict[str, Any], *, timeout_ms: int | None) -> uuid.UUID:
        plan = self.plan(src["task_name"], None, queue=src["queue"], priority=src["priority"],
                         max_retries=src["max_retries"])
        plan.timeout_ms = timeout_ms
        plan.metadata = src.get("metadata")
        job_id = new_id()
        self.backend.insert_jobs([self.row(plan, job_id, src["args"], src["kwargs"])])
        self._after_enqueue(plan, [job_id])
        return job_id

    def purge_completed(self, older_than: float = 86400) -> int:
        """Delete completed jobs finished more than `older_than` seconds ago, with their
        errors, logs, metrics, dependency links and replay history."""
        cutoff = timezone.now() - timedelta(seconds=_seconds("older_than", older_than))
        return self.purge_jobs(
            self.job_model.objects.using(self.using)
            .finished_before(cutoff, JobStatus.COMPLETE).values_list("id", flat=True))

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
        return deleted

    def purge_jobs(self, ids_query: Iterable[Any]) -> int:
        """Delete the jobs a values_list('id') query selects, in short batches, children first.

        Each batch is its own transaction, so a purge of 100,000 jobs never holds the write
        lock for long."""
        total = 0
        b = self.backend
        query: Any = ids_query
        while True:
            ids = [b.uid(b.to_uuid(i)) for i in query[:PURGE_BATCH]]
            if not ids:
                return total
            marks = ", ".join(["%s"] * len(ids))
            with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
                for sql in _CHILDREN:
                    sql = sql.format(marks=marks)
                    cursor.execute(sql, ids * sql.count("IN ("))
                total += cursor.rowcount
            if len(ids) < PURGE_BATCH:
                return total

    # -- queues ----------------------------------------------------------------------------
    def pause(self, name: str) -> None:
        """Stop every worker from claiming jobs of queue `name` (persisted)."""
        self.queue_state_model.objects.using(self.using).update_or_create(
            name=name, defaults={"paused": True})

    def resume(self, name: str) -> None:
        self.queue_state_model.objects.using(self.using).update_or_create(
            name=name, defaults={"paused": False})

    def paused_queues(self) -> list[str]:
        return list(self.queue_state_model.objects.using(self.using).filter(paused=True)
                    .values_list("name", flat=True))

