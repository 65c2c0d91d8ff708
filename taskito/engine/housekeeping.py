"""What the lifeline leader does for everyone: expire due jobs, fire periodic tasks, purge
what outlived its TTL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.cron import next_fire
from taskito.db.statements import TTL_PRUNED
from taskito.engine.base import EngineBase
from taskito.ids import new_id
from taskito.registry import PeriodicSpec, TaskSpec, registry
from taskito.serialization import dumps
from taskito.states import TERMINAL

#: heartbeats, the lifeline lease and its duties (rescue, expiry, periodic runs, purge)
logger = logging.getLogger("taskito.lifeline")

PURGE_BATCH = 1000
_FINISHED = tuple(sorted(int(s) for s in TERMINAL))


class HousekeepingMixin(EngineBase):
    """Expiry, periodic firing and TTL purges."""

    def expire_due(self, now: datetime | None = None) -> int:
        """Cancel pending jobs whose `expires` time has passed (error "expired"), and their
        pending dependents; returns how many expired. The lifeline calls this every second."""
        d = self.dialect
        now = now or timezone.now()
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            expired = d.expire_due(cursor, now)
            for jid in expired:
                d.cancel_dependents(cursor, [jid], now, f"dependency cancelled: {jid}")
        return len(expired)

    # -- periodic tasks ---------------------------------------------------------------------
    def sync_periodic(self, specs: Iterable[PeriodicSpec], now: datetime | None = None) -> int:
        """Create or update the PeriodicTask rows of schedules declared in code (the
        `enabled` switch set in the admin is kept); returns how many rows changed."""
        now = now or timezone.now()
        model = self.queue.periodic_model
        rows = model.objects.using(self.using)
        changed = 0
        for spec in specs:
            fields = {"task_name": spec.task_name, "cron": spec.cron,
                      "args": dumps(list(spec.args), "periodic args"),
                      "kwargs": dumps(dict(spec.kwargs), "periodic kwargs"),
                      "queue": spec.queue, "timezone": spec.timezone}
            row = rows.filter(name=spec.name).values(*fields).first()
            if row == fields:
                continue
            nxt = next_fire(spec.cron, now, spec.timezone)
            if row is None:  # one INSERT .. ON CONFLICT DO NOTHING: no read before the write
                created = rows.bulk_create([model(name=spec.name, next_run_at=nxt, **fields)],
                                           ignore_conflicts=True)
                changed += len(created)
            else:
                changed += rows.filter(name=spec.name).update(**fields, next_run_at=nxt,
                                                              updated_at=now)
        return changed

    def fire_due_periodic(self, now: datetime | None = None) -> int:
        """Enqueue one job for every enabled schedule whose time has come, and move it to its
        next time in the same transaction. The move names the time it fired for, so even
        two schedulers at once fire each due time once. Missed times (no worker ran) are
        not caught up: a schedule fires once and moves on to its next future time."""
        now = now or timezone.now()
        d = self.dialect
        due = list(self.queue.periodic_model.objects.using(self.using)
                   .filter(enabled=True, next_run_at__lte=now)
                   .values("id", "name", "task_name", "cron", "args", "kwargs", "queue",
                           "timezone", "next_run_at"))
        fired = 0
        for row in due:
            nxt = next_fire(row["cron"], now, row["timezone"])
            # the task's own queue, priority, retries and timeout, as enqueue() uses them
            spec = _spec(row["task_name"])
            with transaction.atomic(using=self.using), d.cursor() as cursor:
                if not d.advance_periodic(cursor, row["id"], row["next_run_at"], nxt, now):
                    continue  # another scheduler fired it, or it was disabled meanwhile
                plan = self.queue.plan(row["task_name"], spec, queue=row["queue"] or None,
                                       now=now)
                plan.metadata = dumps({"periodic": row["name"],
                                       "scheduled_for": row["next_run_at"].isoformat()})
                d.insert_jobs([self.queue.row(plan, new_id(), row["args"], row["kwargs"])])
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
        d = self.dialect
        deleted = self._purge_batches(lambda: d.expired_by_own_ttl(_FINISHED, now, PURGE_BATCH))
        ttl = self.queue.result_ttl
        if ttl is None:
            return deleted
        cutoff = now - timedelta(seconds=float(ttl))
        deleted += self.queue.purge_jobs(
            self.queue.job_model.objects.using(self.using)
            .filter(status__in=_FINISHED, completed_at__lt=cutoff, result_ttl__isnull=True)
            .values_list("id", flat=True))
        for table, column in TTL_PRUNED:
            while d.delete_older(table, column, cutoff, PURGE_BATCH) >= PURGE_BATCH:
                pass
        return deleted

    def _purge_batches(self, next_batch: Callable[[], list[Any]]) -> int:
        total = 0
        while True:
            ids = next_batch()
            if not ids:
                return total
            total += self.queue.purge_jobs(ids)
            if len(ids) < PURGE_BATCH:
                return total


def _spec(task_name: str) -> TaskSpec | None:
    """The task's spec when this process knows it; a resolver that fails (a module that no
    longer imports) leaves the job to the worker's own unknown-task handling."""
    try:
        return registry.resolve(task_name)
    except Exception:
        logger.warning("periodic task=%s: resolving it failed; enqueued with the queue's "
                       "defaults", task_name, exc_info=True)
        return None
