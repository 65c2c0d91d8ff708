"""Periodic tasks, result TTL cleanup and dependency graphs on Queue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.db.base import DEAD_LETTER, JOB_ERROR, METRIC
from taskito.ids import as_uuid, new_id
from taskito.registry import PeriodicSpec, registry
from taskito.schedules import next_fire
from taskito.serialization import dumps
from taskito.supervision import SupervisionMixin

logger = logging.getLogger(__name__)

PERIODIC = "taskito_periodic_task"
PURGE_BATCH = 1000
_FINISHED = (2, 3, 4, 5)


class SchedulingMixin(SupervisionMixin):
    """What the scheduler (run by the lifeline leader) asks of the queue."""

    # -- periodic tasks ---------------------------------------------------------------------
    def sync_periodic(self, specs: Iterable[PeriodicSpec], now: datetime | None = None) -> int:
        """Create or update the PeriodicTask rows of schedules declared in code (the
        `enabled` switch set in the admin is kept); returns how many rows changed."""
        now = now or timezone.now()
        model = self.periodic_model.objects.using(self.using)
        changed = 0
        for spec in specs:
            fields = {"task_name": spec.task_name, "cron": spec.cron,
                      "args": dumps(list(spec.args), "periodic args"),
                      "kwargs": dumps(dict(spec.kwargs), "periodic kwargs"),
                      "queue": spec.queue, "timezone": spec.timezone}
            row = model.filter(name=spec.name).values(*fields).first()
            if row == fields:
                continue
            nxt = next_fire(spec.cron, now, spec.timezone)
            if row is None:  # one INSERT .. ON CONFLICT DO NOTHING: no read before the write
                created = model.bulk_create(
                    [self.periodic_model(name=spec.name, next_run_at=nxt, **fields)],
                    ignore_conflicts=True)
                changed += len(created)
            else:
                changed += model.filter(name=spec.name).update(**fields, next_run_at=nxt,
                                                               updated_at=now)
        return changed

    def fire_due_periodic(self, now: datetime | None = None) -> int:
        """Enqueue one job for every enabled schedule whose time has come, and move it to its
        next time in the same transaction. The move names the time it fired for, so even
        two schedulers at once fire each due time once. Missed times (no worker ran) are
        not caught up: a schedule fires once and moves on to its next future time."""
        now = now or timezone.now()
        b = self.backend
        due = list(self.periodic_model.objects.using(self.using)
                   .filter(enabled=True, next_run_at__lte=now)
                   .values("id", "name", "task_name", "cron", "args", "kwargs", "queue",
                           "timezone", "next_run_at"))
        fired = 0
        for row in due:
            nxt = next_fire(row["cron"], now, row["timezone"])
            # the task's own queue, priority, retries and timeout, as enqueue() uses them
            spec = registry.resolve(row["task_name"])
            with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
                cursor.execute(f"UPDATE {PERIODIC} SET next_run_at = %s, last_run_at = %s "
                               f"WHERE id = %s AND next_run_at = %s AND enabled = %s",
                               [b.dt(nxt), b.dt(now), row["id"], b.dt(row["next_run_at"]),
                                True])
                if cursor.rowcount != 1:
                    continue  # another scheduler fired it, or it was disabled meanwhile
                plan = self.plan(row["task_name"], spec, queue=row["queue"] or None, now=now)
                plan.metadata = dumps({"periodic": row["name"],
                                       "scheduled_for": row["next_run_at"].isoformat()})
                b.insert_jobs([self.row(plan, new_id(), row["args"], row["kwargs"])])
            fired += 1
            logger.info("periodic fired name=%s task=%s next=%s", row["name"],
                        row["task_name"], nxt.isoformat())
        return fired

    # -- result TTL ---------------------------------------------------------------------------
    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete what outlived its TTL: finished jobs (with their child rows) past their own
        `result_ttl` or past the queue's, dead letters, and error/log/metric rows older than
        the queue's TTL even when their job remains. In batches of short transactions.
        Returns the number of jobs deleted."""
        now = now or timezone.now()
        b = self.backend
        deleted = 0
        jobs = self.job_model.objects.using(self.using)
        # per job: result_ttl seconds after it finished
        deleted += self._purge_ids(
            lambda: b.expired_by_own_ttl(_FINISHED, now, PURGE_BATCH))
        ttl = self.result_ttl
        if ttl is None:
            return deleted
        cutoff = now - timedelta(seconds=float(ttl))
        deleted += self.purge_jobs(
            jobs.filter(status__in=_FINISHED, completed_at__lt=cutoff, result_ttl__isnull=True)
            .values_list("id", flat=True))
        at = b.dt(cutoff)
        for table, column in ((DEAD_LETTER, "failed_at"), (JOB_ERROR, "failed_at"),
                              ("taskito_task_log", "logged_at"), (METRIC, "recorded_at")):
            self._delete_older(table, column, at)
        return deleted

    def _purge_ids(self, next_batch: Any) -> int:
        total = 0
        while True:
            ids = next_batch()
            if not ids:
                return total
            total += self.purge_jobs(ids)
            if len(ids) < PURGE_BATCH:
                return total

    def _delete_older(self, table: str, column: str, at: Any) -> None:
        pk = "id"
        while True:
            with transaction.atomic(using=self.using), \
                    self.backend.connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} "
                               f"WHERE {column} < %s LIMIT %s)", [at, PURGE_BATCH])
                if cursor.rowcount < PURGE_BATCH:
                    return

    # -- dependency graphs ------------------------------------------------------------------
    def job_dag(self, job_id: Any) -> dict[str, Any]:
        """The dependency graph around a job: every job reachable through depends_on links
        in either direction, as {"nodes": [{id, task_name, status}], "edges": [[from, to]]}
        where an edge means "to depends on from"."""
        root = as_uuid(job_id)
        if root is None:
            return {"nodes": [], "edges": []}
        seen = {root}
        edges: set[tuple[uuid.UUID, uuid.UUID]] = set()
        frontier = [root]
        links = self.dependency_model.objects.using(self.using)
        while frontier:
            rows = list(links.filter(job_id__in=frontier).values_list("depends_on_id", "job_id"))
            rows += list(links.filter(depends_on_id__in=frontier)
                         .values_list("depends_on_id", "job_id"))
            edges.update(rows)
            frontier = [n for pair in rows for n in pair if n not in seen]
            seen.update(frontier)
        nodes = (self.job_model.objects.using(self.using).filter(id__in=seen)
                 .values("id", "task_name", "status"))
        from taskito.states import JobStatus

        return {
            "nodes": [{"id": str(n["id"]), "task_name": n["task_name"],
                       "status": JobStatus(n["status"]).label} for n in nodes],
            "edges": sorted([str(a), str(b)] for a, b in edges),
        }

