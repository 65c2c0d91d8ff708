"""Worker liveness on Queue: heartbeats, leases, the rescue of jobs whose worker died, and
requeueing jobs a stopping worker could not finish."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.db.base import CLAIM_COLUMNS, JOB, ClaimedJob
from taskito.execution import ExecutionMixin, Outcome, OutcomeKind

#: heartbeats, the lifeline lease and its duties (rescue, expiry, periodic runs, purge)
logger = logging.getLogger("taskito.lifeline")

WORKER = "taskito_worker"
LEASE = "taskito_lease"


class SupervisionMixin(ExecutionMixin):
    """What workers tell each other through the database."""

    def heartbeat(self, *, worker_id: str, hostname: str, pid: int, queues: str,
                  concurrency: int, started_at: datetime, now: datetime | None = None) -> None:
        """Record that a worker is alive (one upsert)."""
        b = self.backend
        with b.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {WORKER} (worker_id, hostname, pid, queues, concurrency, "
                f"started_at, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (worker_id) DO UPDATE SET last_seen = excluded.last_seen",
                [worker_id, hostname, pid, queues, concurrency, b.dt(started_at),
                 b.dt(now or timezone.now())])

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's heartbeat row (on a clean exit)."""
        with self.backend.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {WORKER} WHERE worker_id = %s", [worker_id])

    def acquire_lease(self, name: str, holder: str, ttl: float,
                      now: datetime | None = None) -> bool:
        """Take or renew lease `name` for `ttl` seconds; True while `holder` holds it.
        One statement: a lease held by someone else is taken only once it has expired."""
        b = self.backend
        now = now or timezone.now()
        with b.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {LEASE} (name, holder, expires_at) VALUES (%s, %s, %s) "
                f"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                f"expires_at = excluded.expires_at WHERE {LEASE}.holder = excluded.holder "
                f"OR {LEASE}.expires_at < %s RETURNING holder",
                [name, holder, b.dt(now + timedelta(seconds=ttl)), b.dt(now)])
            return cursor.fetchone() is not None

    def release_lease(self, name: str, holder: str) -> None:
        with self.backend.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {LEASE} WHERE name = %s AND holder = %s",
                           [name, holder])

    def rescue_lost_jobs(self, stale_after: float, now: datetime | None = None) -> int:
        """Put the running jobs of workers silent for `stale_after` seconds through the
        failure path ("worker lost": the attempt counts, so a job that kills its worker ends
        in the dead-letter queue after its retries); returns how many were rescued."""
        b = self.backend
        now = now or timezone.now()
        cutoff = b.dt(now - timedelta(seconds=stale_after))
        columns = ", ".join(f"j.{c}" for c in CLAIM_COLUMNS)
        with b.connection.cursor() as cursor:
            cursor.execute(f"SELECT worker_id FROM {WORKER} WHERE last_seen < %s", [cutoff])
            dead = [r[0] for r in cursor.fetchall()]
            # Running jobs of a stale worker, or of a worker with no heartbeat row at all that
            # started before the cutoff (its row was removed, or it never wrote one).
            cursor.execute(
                f"SELECT {columns}, j.claim_token, j.worker_id FROM {JOB} j WHERE j.status = 1 "
                f"AND (j.worker_id IN (SELECT worker_id FROM {WORKER} WHERE last_seen < %s) "
                f"OR (j.started_at < %s AND NOT EXISTS (SELECT 1 FROM {WORKER} w "
                f"WHERE w.worker_id = j.worker_id)))", [cutoff, cutoff])
            rows = cursor.fetchall()
        outcomes = [self._lost(row, now) for row in rows]
        applied = self.finish(outcomes, now=now) if outcomes else 0
        if dead:
            marks = ", ".join(["%s"] * len(dead))
            with b.connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {WORKER} WHERE last_seen < %s AND worker_id IN "
                               f"({marks})", [cutoff, *dead])
        for o, row in zip(outcomes, rows, strict=True):
            logger.warning("rescued job=%s task=%s lost_worker=%s outcome=%s", o.job.id,
                           o.job.task_name, row[-1], o.kind)
        return applied

    def _lost(self, row: Sequence[Any], now: datetime) -> Outcome:
        *claim, token, worker_id = row
        job = self.backend.claimed_job(claim, token)
        kind: OutcomeKind = "retry" if job.retry_count < job.max_retries else "dead"
        return Outcome(job, kind, 0.0, retry_at=now,
                       error=f"worker lost: worker {worker_id} stopped while running the job")

    def requeue(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running attempts back to pending at once, without spending a retry (a worker
        that stops before they finished); returns how many were still this attempt's."""
        if not jobs:
            return 0
        b = self.backend
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {JOB} SET status = 0, worker_id = NULL, claim_token = NULL "
                f"WHERE id = %s AND claim_token = %s AND status = 1",
                [(b.uid(j.id), j.token) for j in jobs])
            count = len(jobs) if cursor.rowcount < 0 else cursor.rowcount
            if count:
                b.notify_new_jobs(cursor)
                self.attempts_ended([j.task_name for j in jobs])
        return count
