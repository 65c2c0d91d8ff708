"""Operator verbs on Queue: cancel, retry and delete dead letters, replay, purge, pause."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.db.base import DEAD_LETTER, DEPENDENCY, JOB, JOB_ERROR, METRIC, QUEUE_STATE
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid, new_id
from taskito.inspection import InspectionMixin
from taskito.result import JobResult
from taskito.states import JobStatus

PURGE_BATCH = 1000
# Columns of a copied job (in INSERT_COLUMNS order): a fresh pending job with the source's
# task, arguments and options; the parameters are new id, created, scheduled, cancel, deps.
_COPY_FROM_JOB = (
    "%s, queue, task_name, args, kwargs, 0, priority, 0, 0, 0, max_retries, timeout_ms, "
    "soft_timeout_ms, %s, %s, NULL, result_ttl, NULL, metadata, %s, %s")
_COPY_FROM_DEAD = (
    "%s, queue, task_name, args, kwargs, 0, priority, 0, 0, 0, max_retries, timeout_ms, "
    "NULL, %s, %s, NULL, NULL, NULL, metadata, %s, %s")
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
            self.backend.notify_finished(cursor, [jid])
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
                b.notify_finished(cursor, children)
                total += len(children)
                frontier = children
        return total

    def expire_due(self, now: datetime | None = None) -> int:
        """Cancel pending jobs whose `expires` time has passed (error "expired"), and their
        pending dependents; returns how many expired. Workers call this about every second."""
        b = self.backend
        at = b.dt(now or timezone.now())
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {JOB} SET status = 5, error = %s, completed_at = %s "
                           f"WHERE status = 0 AND expires_at IS NOT NULL AND expires_at <= %s "
                           f"RETURNING id", ["expired", at, at])
            expired = [b.to_uuid(r[0]) for r in cursor.fetchall()]
            b.notify_finished(cursor, expired)
            for jid in expired:
                self.cancel_dependents([jid], f"dependency cancelled: {jid}")
        return len(expired)

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
        b = self.backend
        # Copy, then delete: both statements write, so the transaction holds the write lock
        # from its first statement (a deferred SQLite transaction that read first could not).
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            copied = b.copy_job(cursor, f"SELECT {_COPY_FROM_DEAD} FROM {DEAD_LETTER} "
                                        f"WHERE id = %s", self._copy_params(new, did))
            cursor.execute(f"DELETE FROM {DEAD_LETTER} WHERE id = %s", [b.uid(did)])
            if not copied or cursor.rowcount != 1:  # unknown, or retried a moment ago
                raise JobNotFound(f"dead letter {dead_id} does not exist")
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
        b = self.backend
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            copied = b.copy_job(cursor, f"SELECT {_COPY_FROM_JOB} FROM {JOB} WHERE id = %s",
                                self._copy_params(new, jid))
            if not copied:
                raise JobNotFound(f"job {job_id} does not exist")
            self.replay_model.objects.using(self.using).create(
                original_job_id=jid, replay_job_id=new, replayed_at=timezone.now())
        return self.handle(new)

    def _copy_params(self, new: uuid.UUID, source: uuid.UUID) -> list[Any]:
        now = self.backend.dt(timezone.now())
        return [self.backend.uid(new), now, now, False, False, self.backend.uid(source)]

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
        self._set_paused(name, True)

    def resume(self, name: str) -> None:
        """Let workers claim jobs of queue `name` again."""
        self._set_paused(name, False)

    def _set_paused(self, name: str, paused: bool) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"queue name must be a non-empty string, not {name!r}")
        with self.backend.connection.cursor() as cursor:  # one upsert statement
            cursor.execute(
                f"INSERT INTO {QUEUE_STATE} (name, paused, updated_at) VALUES (%s, %s, %s) "
                f"ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
                f"updated_at = excluded.updated_at",
                [name, paused, self.backend.dt(timezone.now())])

    def paused_queues(self) -> list[str]:
        return list(self.queue_state_model.objects.using(self.using).filter(paused=True)
                    .values_list("name", flat=True))

