"""SQL shared by every database; vendor modules override what differs.

The hot paths (enqueue, claim, finish) use plain SQL through Django's connection: measured on
SQLite, an ORM select-then-update claim managed 1.5k jobs/s where one UPDATE ... RETURNING
managed tens of thousands.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

JOB = "taskito_job"
DEPENDENCY = "taskito_job_dependency"
QUEUE_STATE = "taskito_queue_state"
DEAD_LETTER = "taskito_dead_letter"
JOB_ERROR = "taskito_job_error"
METRIC = "taskito_task_metric"

INSERT_COLUMNS = (
    "id", "queue", "task_name", "args", "kwargs", "status", "priority", "progress", "attempts",
    "retry_count", "max_retries", "timeout_ms", "soft_timeout_ms", "created_at",
    "scheduled_at", "expires_at", "result_ttl", "unique_key", "metadata", "cancel_requested",
    "has_dependencies",
)
METRIC_COLUMNS = ("job_id", "task_name", "queue", "succeeded", "wall_time_ms", "recorded_at")
CLAIM_COLUMNS = (
    "id", "task_name", "queue", "args", "kwargs", "priority", "scheduled_at", "attempts",
    "retry_count", "max_retries", "timeout_ms", "soft_timeout_ms",
)


@dataclass(slots=True)
class ClaimedJob:
    """A job this worker now runs; `token` fences every write about this attempt."""

    id: uuid.UUID
    task_name: str
    queue: str
    args: str
    kwargs: str
    priority: int
    scheduled_at: Any
    attempts: int
    retry_count: int
    max_retries: int
    timeout_ms: int | None
    soft_timeout_ms: int | None
    token: str


class ChangeWatcher:
    """Tells whether another connection may have written since the last look.

    This generic one only knows time: it answers "maybe" once its interval has passed, and
    the interval grows by a quarter each time, from `interval` up to `max_interval`."""

    growth = 1.25

    def __init__(self, backend: Backend, interval: float,
                 max_interval: float | None = None) -> None:
        self.backend = backend
        self.base_interval = interval
        self.interval = interval
        self.max_interval = max(interval, max_interval or interval)
        self._last = 0.0

    def changed(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.interval = min(self.interval * self.growth, self.max_interval)
            return True
        return False

    def reset(self) -> None:
        self._last = time.monotonic()
        self.interval = self.base_interval

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds until `changed()` says yes; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.changed():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.interval, remaining))
        return True

    def close(self) -> None:
        """Release what the watcher holds (a listening connection, a thread)."""


class Backend:
    """Generic SQL; `db.sqlite` and `db.postgresql` subclass it."""

    vendor = "generic"
    #: how often an idle watcher re-checks when the database gives no cheap change signal
    fallback_interval = 0.05

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.alias]

    # -- parameters ------------------------------------------------------------------------
    def dt(self, value: datetime | None) -> Any:
        return None if value is None else self.connection.ops.adapt_datetimefield_value(value)

    def uid(self, value: uuid.UUID) -> Any:
        return value.hex

    def to_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    # -- enqueue ---------------------------------------------------------------------------
    def insert_jobs(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert job rows (values in INSERT_COLUMNS order) with one executemany."""
        sql = self._insert_sql()
        with self.connection.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)

    def insert_unique_job(self, row: Sequence[Any]) -> bool:
        """Insert unless an active job holds the same unique_key; True when inserted."""
        sql = self._insert_sql() + " ON CONFLICT DO NOTHING RETURNING id"
        with self.connection.cursor() as cursor:
            cursor.execute(sql, row)
            return cursor.fetchone() is not None

    def copy_job(self, cursor: Any, select_sql: str, params: Sequence[Any]) -> bool:
        """INSERT a job from a SELECT (replay, retry of a dead letter); True if one was."""
        cursor.execute(f"INSERT INTO {JOB} ({', '.join(INSERT_COLUMNS)}) {select_sql}", params)
        copied = cursor.rowcount == 1
        if copied:
            self.notify_new_jobs(cursor)
        return copied

    def notify_finished(self, cursor: Any, job_ids: Sequence[uuid.UUID]) -> None:
        """Tell result() waiters that these jobs reached a final status (not completions,
        which `complete_jobs` announces); none by default."""

    def notify_new_jobs(self, cursor: Any) -> None:
        """Tell listening workers that jobs were added (delivered on commit); none by default."""

    def _insert_sql(self) -> str:
        cols = ", ".join(INSERT_COLUMNS)
        marks = ", ".join(["%s"] * len(INSERT_COLUMNS))
        return f"INSERT INTO {JOB} ({cols}) VALUES ({marks})"

    # -- finish ----------------------------------------------------------------------------
    def complete_jobs(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, str | None]],
                      at: Any) -> set[uuid.UUID]:
        """Mark (id, claim token, result) running attempts complete; return the ids that were
        still owned by that attempt (a superseded attempt writes nothing)."""
        cursor.executemany(
            f"UPDATE {JOB} SET status = 2, result = %s, completed_at = %s, progress = 100 "
            f"WHERE id = %s AND claim_token = %s AND status = 1",
            [(result, at, self.uid(job_id), token) for job_id, token, result in items])
        if cursor.rowcount == len(items):
            return {job_id for job_id, _, _ in items}
        marks = ", ".join(["%s"] * len(items))
        cursor.execute(f"SELECT id, claim_token FROM {JOB} WHERE status = 2 AND id IN ({marks})",
                       [self.uid(job_id) for job_id, _, _ in items])
        landed = {(self.to_uuid(r[0]), r[1]) for r in cursor.fetchall()}
        return {job_id for job_id, token, _ in items if (job_id, token) in landed}

    def insert_metrics(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """(job_id, task_name, queue, succeeded, wall_time_ms, recorded_at) rows."""
        if rows:
            cursor.executemany(f"INSERT INTO {METRIC} ({', '.join(METRIC_COLUMNS)}) "
                               f"VALUES (%s, %s, %s, %s, %s, %s)", rows)

    def expired_by_own_ttl(self, statuses: Sequence[int], now: datetime,
                           limit: int) -> list[Any]:
        """Ids of finished jobs whose own result_ttl has run out."""
        marks = ", ".join(["%s"] * len(statuses))
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {JOB} WHERE status IN ({marks}) AND result_ttl IS NOT NULL "
                f"AND completed_at IS NOT NULL AND {self.ttl_end_sql} < %s LIMIT %s",
                [*statuses, self.dt(now), limit])
            return [r[0] for r in cursor.fetchall()]

    #: SQL for "completed_at plus result_ttl seconds" (date arithmetic differs per database)
    ttl_end_sql = ""

    # -- claim -----------------------------------------------------------------------------
    def ready_filter(self, queues: Sequence[str] | None) -> tuple[str, list[Any]]:
        """WHERE clause (over alias j) and its leading parameters, `now` twice, left to fill."""
        where = [
            "j.status = 0",
            "j.scheduled_at <= %s",
            "(j.expires_at IS NULL OR j.expires_at > %s)",
            f"j.queue NOT IN (SELECT name FROM {QUEUE_STATE} WHERE paused = %s)",
            f"(j.has_dependencies = %s OR NOT EXISTS (SELECT 1 FROM {DEPENDENCY} d "
            f"JOIN {JOB} p ON p.id = d.depends_on_id WHERE d.job_id = j.id AND p.status <> 2))",
        ]
        params: list[Any] = [True, False]
        if queues:
            where.append(f"j.queue IN ({', '.join(['%s'] * len(queues))})")
            params.extend(queues)
        return " AND ".join(where), params

    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[ClaimedJob]:
        raise NotImplementedError

    def _claimed(self, rows: Iterable[Sequence[Any]], token: str) -> list[ClaimedJob]:
        jobs = [self.claimed_job(r, token) for r in rows]
        jobs.sort(key=lambda j: (-j.priority, j.scheduled_at, j.id))
        return jobs

    def claimed_job(self, r: Sequence[Any], token: str) -> ClaimedJob:
        """A ClaimedJob from a row of CLAIM_COLUMNS."""
        return ClaimedJob(self.to_uuid(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                          r[9], r[10], r[11], token)

    # -- waiting ---------------------------------------------------------------------------
    def watcher(self, interval: float, wake: Callable[[], None] | None = None) -> ChangeWatcher:
        """A cheap 'has anything changed?' probe for idle loops. A watcher that learns of
        changes by itself (LISTEN) calls `wake` so a sleeping loop need not wait it out."""
        return ChangeWatcher(self, max(interval, 0.0005), self.fallback_interval)

    def job_watcher(self, job_id: uuid.UUID, interval: float) -> ChangeWatcher:
        """A watcher for one job's outcome (JobResult.result waits on it)."""
        watcher = self.watcher(interval)
        watcher.reset()
        return watcher

    def configure_connection(self, connection: BaseDatabaseWrapper) -> None:
        """Per-connection set-up (pragmas); nothing by default."""
