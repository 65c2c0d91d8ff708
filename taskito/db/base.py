"""The dialect interface: every statement taskito runs, with the SQL every database shares
(text in `db.statements`); vendor modules override what differs.

The hot paths (enqueue, claim, finish) use plain SQL through Django's connection: measured on
SQLite, an ORM select-then-update claim managed 1.5k jobs/s where one UPDATE ... RETURNING
managed tens of thousands.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from taskito.db import statements as q
from taskito.db.statements import CLAIM_COLUMNS, INSERT_COLUMNS, METRIC_COLUMNS

__all__ = ["CLAIM_COLUMNS", "IDLE_LOOK_MIN", "INSERT_COLUMNS", "METRIC_COLUMNS", "ChangeWatcher",
           "Dialect", "OverviewRows", "ReadyWatcher", "Upkeep"]

#: the shortest gap between two looks of a ReadyWatcher (seconds)
IDLE_LOOK_MIN = 0.001


@dataclass(frozen=True, slots=True)
class OverviewRows:
    """What Queue.overview() is built from: the rows of its six reads, datetimes aware."""

    #: (queue, pending jobs, due time of its longest-waiting ready job or None)
    pending: list[tuple[str, int, datetime | None]]
    #: (queue, status, jobs) for every status but pending
    statuses: list[tuple[str, int, int]]
    #: (queue, paused) of every QueueState row
    queue_states: list[tuple[str, bool]]
    #: (id, host, pid, queues as stored, concurrency, started_at, last_seen, running jobs)
    workers: list[tuple[str, str, int, str, int, datetime, datetime, int]]
    dead_letters: int
    #: (queue, minute since the Unix epoch, runs, succeeded runs)
    throughput: list[tuple[str, int, int, int]]


class Upkeep(Protocol):
    """Background work a worker runs for its database (see Dialect.upkeep)."""

    def close(self) -> None: ...


class ChangeWatcher:
    """Tells whether another connection may have written since the last look.

    This generic one only knows time: it answers "maybe" once its interval has passed, and
    the interval grows by a quarter each time, from `interval` up to `max_interval`."""

    growth = 1.25

    def __init__(self, dialect: Dialect, interval: float,
                 max_interval: float | None = None) -> None:
        self.dialect = dialect
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


class ReadyWatcher(ChangeWatcher):
    """No change signal to wait on (MySQL; PostgreSQL behind a transaction pooler without a
    direct LISTEN alias): an idle worker looks for a ready job in its queues with one
    lock-free read, a claim (a transaction) follows only when there is one. After it finds
    one it looks again soon (`interval`); each look that finds nothing waits a quarter
    longer, up to `max_interval`, so a busy stream of jobs is picked up within milliseconds
    and an idle worker costs about twenty reads a second."""

    def __init__(self, dialect: Dialect, interval: float, max_interval: float,
                 queues: Sequence[str] | None) -> None:
        super().__init__(dialect, interval, max_interval)
        where, params = dialect.ready_filter(queues)
        self._sql = q.ANY_READY.format(where=where)
        self._params = params

    def changed(self) -> bool:
        if not super().changed():
            return False
        stamp = self.dialect.dt(timezone.now())
        with self.dialect.cursor() as cursor:
            cursor.execute(self._sql, [stamp, stamp, *self._params])
            found = cursor.fetchone() is not None
        if found:
            self.interval = self.base_interval  # the next look comes soon again
        return found


class Dialect:
    """The statements of one database alias; `db.sqlite` and `db.postgresql` subclass it
    where their SQL differs. Every SQL statement of taskito runs through a dialect."""

    vendor = "generic"
    #: how often an idle watcher re-checks when the database gives no cheap change signal
    fallback_interval = 0.05
    #: SQL for "completed_at plus result_ttl seconds" (date arithmetic differs per database)
    ttl_end_sql = ""
    #: SQL for a metric row's minute since the Unix epoch, an integer (per database)
    epoch_minute_sql = ""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.alias]

    def cursor(self) -> Any:
        return self.connection.cursor()

    def driver_connection(self, connection: BaseDatabaseWrapper | None = None) -> Any | None:
        """The driver's own connection for a hot-path statement that skips Django's cursor
        wrapper (about 20 microseconds a call), after the checks Django's `cursor()` makes
        (not on an event loop, health check, connected, this thread's, no broken atomic
        block); or None while something watches the statements (DEBUG's query log,
        CaptureQueriesContext, an execute_wrapper): then use `cursor()`, so that they see it.
        Run the statement inside `self.connection.wrap_database_errors` (`connection`: that
        one, when the caller has it at hand)."""
        connection = connection or self.connection
        if connection.execute_wrappers or connection.queries_logged:
            return None
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.validate_thread_sharing()
        connection.validate_no_broken_transaction()
        return connection.connection

    # -- parameters ------------------------------------------------------------------------
    def dt(self, value: datetime | None) -> Any:
        return None if value is None else self.connection.ops.adapt_datetimefield_value(value)

    def uid(self, value: uuid.UUID) -> Any:
        return value.hex

    def to_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def probe_tables(self) -> None:
        """Raise DatabaseError unless the job table can be read (reachable and migrated)."""
        with self.cursor() as cursor:
            cursor.execute(q.PROBE_TABLES)

    # -- enqueue ---------------------------------------------------------------------------
    def insert_jobs(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert job rows (values in INSERT_COLUMNS order) with one executemany."""
        with self.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(q.INSERT_JOB, rows[0])
            else:
                cursor.executemany(q.INSERT_JOB, rows)

    def insert_unique_job(self, row: Sequence[Any]) -> bool:
        """Insert unless an active job holds the same unique_key; True when inserted."""
        with self.cursor() as cursor:
            cursor.execute(q.INSERT_UNIQUE_JOB, row)
            return cursor.fetchone() is not None

    def active_unique(self, key: str) -> uuid.UUID | None:
        """The pending or running job that holds `key`, if any."""
        with self.cursor() as cursor:
            cursor.execute(q.ACTIVE_UNIQUE, [key])
            hit = cursor.fetchone()
        return None if hit is None else self.to_uuid(hit[0])

    #: rows per statement of a batch insert (SQLite allows 32,766 parameters, 21 per row)
    batch_rows = 500

    def insert_unique_jobs(self, rows: Sequence[Sequence[Any]]) -> set[uuid.UUID]:
        """Insert rows that carry a unique_key, one statement per `batch_rows`; a row whose key
        an active job holds is skipped. Returns the ids written. Keys must differ within
        `rows` (the caller folds duplicates)."""
        written: set[uuid.UUID] = set()
        with self.cursor() as cursor:
            for start in range(0, len(rows), self.batch_rows):
                chunk = rows[start:start + self.batch_rows]
                cursor.execute(*self._unique_batch(chunk))
                written.update(self.to_uuid(r[0]) for r in cursor.fetchall())
        return written

    def _unique_batch(self, rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        group = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
        return (q.INSERT_UNIQUE_JOBS.format(values=", ".join([group] * len(rows))),
                [value for row in rows for value in row])

    def active_unique_many(self, keys: Sequence[str]) -> dict[str, uuid.UUID]:
        """The pending or running job holding each of `keys` (keys nobody holds are absent);
        one statement per `batch_rows` keys."""
        found: dict[str, uuid.UUID] = {}
        with self.cursor() as cursor:
            for start in range(0, len(keys), self.batch_rows):
                chunk = list(keys[start:start + self.batch_rows])
                cursor.execute(q.ACTIVE_UNIQUE_MANY.format(marks=", ".join(["%s"] * len(chunk))),
                               chunk)
                found.update((key, self.to_uuid(job_id)) for key, job_id in cursor.fetchall())
        return found

    def insert_dependencies(self, job_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
        with self.cursor() as cursor:
            cursor.executemany(q.INSERT_DEPENDENCY,
                               [(self.uid(job_id), self.uid(dep)) for dep in ids])

    def delete_dead_letter(self, cursor: Any, dead_id: uuid.UUID) -> bool:
        cursor.execute(q.DELETE_DEAD_LETTER, [self.uid(dead_id)])
        return bool(cursor.rowcount == 1)

    def notify_finished(self, cursor: Any, job_ids: Sequence[uuid.UUID]) -> None:
        """Tell result() waiters that these jobs reached a final status (not completions,
        which `complete_jobs` announces); none by default."""

    def notify_new_jobs(self, cursor: Any) -> None:
        """Tell listening workers that jobs were added (delivered on commit); none by default."""

    # -- operator verbs --------------------------------------------------------------------
    def cancel_pending(self, cursor: Any, job_id: uuid.UUID, at: datetime,
                       reason: str) -> bool:
        cursor.execute(q.CANCEL_PENDING, [self.dt(at), reason, self.uid(job_id)])
        if cursor.rowcount != 1:
            return False
        self.notify_finished(cursor, [job_id])
        return True

    def cancel_dependents(self, cursor: Any, roots: Sequence[uuid.UUID], at: datetime,
                          reason: str) -> int:
        """Cancel the pending jobs that wait (directly or not) on `roots`."""
        total = 0
        frontier = list(roots)
        stamp = self.dt(at)
        while frontier:
            marks = ", ".join(["%s"] * len(frontier))
            cursor.execute(q.PENDING_DEPENDENTS.format(marks=marks),
                           [self.uid(i) for i in frontier])
            children = list(dict.fromkeys(self.to_uuid(r[0]) for r in cursor.fetchall()))
            if not children:
                break
            cursor.executemany(q.CANCEL_PENDING, [(stamp, reason, self.uid(c))
                                                  for c in children])
            self.notify_finished(cursor, children)
            total += len(children)
            frontier = children
        return total

    def expire_due(self, cursor: Any, at: datetime) -> list[uuid.UUID]:
        """Cancel pending jobs whose `expires_at` has passed; their ids."""
        stamp = self.dt(at)
        cursor.execute(q.EXPIRE_DUE, ["expired", stamp, stamp])
        expired = [self.to_uuid(r[0]) for r in cursor.fetchall()]
        self.notify_finished(cursor, expired)
        return expired

    def delete_jobs(self, cursor: Any, ids: Sequence[Any]) -> int:
        """Delete jobs (ids as stored) and their child rows; returns how many jobs went."""
        params = [self.uid(self.to_uuid(i)) for i in ids]
        marks = ", ".join(["%s"] * len(ids))
        for sql in q.DELETE_JOBS:
            sql = sql.format(marks=marks)
            cursor.execute(sql, params * sql.count("IN ("))
        return int(cursor.rowcount)

    def delete_older(self, table: str, column: str, at: datetime, limit: int) -> int:
        """Delete up to `limit` rows of a TTL-pruned table older than `at`."""
        if (table, column) not in q.TTL_PRUNED:
            raise ValueError(f"{table}.{column} is not pruned by a TTL")
        with self.cursor() as cursor:
            cursor.execute(q.DELETE_OLDER.format(table=table, column=column),
                           [self.dt(at), limit])
            return int(cursor.rowcount)

    def set_paused(self, name: str, paused: bool, at: datetime) -> None:
        with self.cursor() as cursor:  # one upsert statement
            cursor.execute(q.SET_PAUSED, [name, paused, self.dt(at)])

    # -- finish ----------------------------------------------------------------------------
    def complete_jobs(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, str | None]],
                      at: Any) -> set[uuid.UUID]:
        """Mark (id, claim token, result) running attempts complete; return the ids that were
        still owned by that attempt (a superseded attempt writes nothing)."""
        cursor.executemany(q.COMPLETE_JOB, [(result, at, self.uid(job_id), token)
                                            for job_id, token, result in items])
        if cursor.rowcount == len(items):
            return {job_id for job_id, _, _ in items}
        marks = ", ".join(["%s"] * len(items))
        cursor.execute(q.COMPLETED_TOKENS.format(marks=marks),
                       [self.uid(job_id) for job_id, _, _ in items])
        landed = {(self.to_uuid(r[0]), r[1]) for r in cursor.fetchall()}
        return {job_id for job_id, token, _ in items if (job_id, token) in landed}

    def finish_completed(self, items: Sequence[tuple[uuid.UUID, str, str | None, float, str, str]],
                         at: Any) -> set[uuid.UUID]:
        """Mark (id, claim token, result, wall ms, task name, queue) running attempts complete
        and record a metric row for each that landed, atomically; return the ids that landed.
        The finish of a batch that only completed jobs (the common case); by default the two
        statements of `finish` in a transaction of their own."""
        with transaction.atomic(using=self.alias), self.cursor() as cursor:
            landed = self.complete_jobs(cursor, [item[:3] for item in items], at)
            self.insert_metrics(cursor, [(self.uid(job_id), name, queue, True, wall, at)
                                         for job_id, _, _, wall, name, queue in items
                                         if job_id in landed])
        return landed

    def retry_job(self, cursor: Any, job_id: uuid.UUID, token: str, retry_at: datetime | None,
                  error: str | None) -> bool:
        cursor.execute(q.RETRY_JOB, [self.dt(retry_at), error, self.uid(job_id), token])
        return bool(cursor.rowcount == 1)

    def end_job(self, cursor: Any, job_id: uuid.UUID, token: str, status: int,
                error: str | None, at: Any) -> bool:
        """Move a running attempt to dead or cancelled."""
        if status not in (q.DEAD, q.CANCELLED):
            raise ValueError(f"end_job moves to dead or cancelled, not {status}")
        cursor.execute(q.END_JOB, [status, error, at, self.uid(job_id), token])
        return bool(cursor.rowcount == 1)

    def insert_dead_letter(self, cursor: Any, dead_id: uuid.UUID, job_id: uuid.UUID,
                           at: Any) -> None:
        cursor.execute(q.INSERT_DEAD_LETTER, [self.uid(dead_id), at, self.uid(job_id)])

    def insert_error(self, cursor: Any, job_id: uuid.UUID, attempt: int, error: str,
                     traceback: str, at: Any) -> None:
        cursor.execute(q.INSERT_ERROR, [self.uid(job_id), attempt, error, traceback, at])

    def insert_metrics(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """(job_id, task_name, queue, succeeded, wall_time_ms, recorded_at) rows."""
        if rows:
            cursor.executemany(q.INSERT_METRIC, rows)

    def set_progress(self, job_id: uuid.UUID, token: str, progress: int,
                     partial: str | None = None, *, with_partial: bool = False) -> bool:
        """Progress (and the partial result's JSON when `with_partial`) of a running
        attempt; False when that attempt no longer owns the job."""
        sql = q.SET_PROGRESS.format(partial=", partial_result = %s" if with_partial else "")
        params: list[Any] = [progress, partial] if with_partial else [progress]
        with self.cursor() as cursor:
            cursor.execute(sql, [*params, self.uid(job_id), token])
            return bool(cursor.rowcount == 1)

    def requeue(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str]]) -> int:
        """Running attempts (id, token) back to pending; how many were still theirs."""
        cursor.executemany(q.REQUEUE, [(self.uid(i), token) for i, token in items])
        count = len(items) if cursor.rowcount < 0 else int(cursor.rowcount)
        if count:
            self.notify_new_jobs(cursor)
        return count

    def defer(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, datetime]]) -> None:
        """Running attempts (id, token, until) back to pending until a time, giving back the
        attempt their claim counted."""
        cursor.executemany(q.DEFER, [(self.dt(until), self.uid(i), token)
                                     for i, token, until in items])

    def expired_by_own_ttl(self, statuses: Sequence[int], now: datetime,
                           limit: int) -> list[Any]:
        """Ids of finished jobs whose own result_ttl has run out."""
        marks = ", ".join(["%s"] * len(statuses))
        with self.cursor() as cursor:
            cursor.execute(q.EXPIRED_BY_OWN_TTL.format(marks=marks, ttl_end=self.ttl_end_sql),
                           [*statuses, self.dt(now), limit])
            return [r[0] for r in cursor.fetchall()]

    # -- claim -----------------------------------------------------------------------------
    def ready_filter(self, queues: Sequence[str] | None) -> tuple[str, list[Any]]:
        """WHERE clause (over alias j) and its leading parameters, `now` twice, left to fill."""
        where = [
            f"j.status = {q.PENDING}",
            "j.scheduled_at <= %s",
            "(j.expires_at IS NULL OR j.expires_at > %s)",
            f"j.queue NOT IN (SELECT name FROM {q.QUEUE_STATE} WHERE paused = %s)",
            f"(j.has_dependencies = %s OR NOT EXISTS (SELECT 1 FROM {q.DEPENDENCY} d "
            f"JOIN {q.JOB} p ON p.id = d.depends_on_id WHERE d.job_id = j.id "
            f"AND p.status <> {q.COMPLETE}))",
        ]
        params: list[Any] = [True, False]
        if queues:
            where.append(f"j.queue IN ({', '.join(['%s'] * len(queues))})")
            params.extend(queues)
        return " AND ".join(where), params

    def claim_job(self, job_id: uuid.UUID, *, now: datetime, worker_id: str,
                  token: str) -> Sequence[Any] | None:
        """Mark one pending job running whatever its due time (its dependencies complete);
        its CLAIM_COLUMNS row, or None when it is not pending or still waits."""
        with self.cursor() as cursor:
            cursor.execute(q.CLAIM_JOB, [self.dt(now), worker_id, token, False,
                                         self.uid(job_id), False])
            row: Sequence[Any] | None = cursor.fetchone()
        return row

    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[Sequence[Any]]:
        """Mark up to `limit` ready jobs running for this attempt; their CLAIM_COLUMNS rows."""
        raise NotImplementedError

    # -- workflows -------------------------------------------------------------------------
    def insert_workflow(self, cursor: Any, workflow_id: uuid.UUID, graph: str, waiting: int,
                        at: datetime, rows: Sequence[Sequence[Any]]) -> None:
        """The workflow row and its steps (values in WORKFLOW_JOB_COLUMNS order)."""
        cursor.execute(q.INSERT_WORKFLOW, [self.uid(workflow_id), graph, waiting, self.dt(at)])
        cursor.executemany(q.INSERT_WORKFLOW_JOB, rows)
        self.notify_new_jobs(cursor)

    def workflow_graph(self, cursor: Any, workflow_id: uuid.UUID) -> str | None:
        cursor.execute(q.WORKFLOW_GRAPH, [self.uid(workflow_id)])
        row = cursor.fetchone()
        return None if row is None else str(row[0])

    def step_parents_done(self, cursor: Any, workflow_id: uuid.UUID,
                          counts: Sequence[tuple[int, int]]) -> None:
        """Lower the waiting count of steps (step, parents just completed); locks them."""
        wid = self.uid(workflow_id)
        cursor.executemany(q.STEP_PARENTS_DONE, [(n, wid, step, n) for step, n in counts])

    def ready_steps(self, cursor: Any, workflow_id: uuid.UUID, steps: Sequence[int],
                    waiting_at: datetime) -> list[tuple[uuid.UUID, int, str]]:
        """(id, step, args JSON) of those steps that wait on no parent any more and are not
        released yet."""
        marks = ", ".join(["%s"] * len(steps))
        cursor.execute(q.READY_STEPS.format(marks=marks),
                       [self.uid(workflow_id), self.dt(waiting_at), *steps])
        return [(self.to_uuid(r[0]), int(r[1]), str(r[2])) for r in cursor.fetchall()]

    def step_results(self, cursor: Any, workflow_id: uuid.UUID,
                     steps: Sequence[int]) -> dict[int, str | None]:
        """Result JSON of the completed steps among `steps`."""
        marks = ", ".join(["%s"] * len(steps))
        cursor.execute(q.STEP_RESULTS.format(marks=marks), [self.uid(workflow_id), *steps])
        return {int(r[0]): r[1] for r in cursor.fetchall()}

    def release_steps(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, datetime]]
                      ) -> None:
        """Make waiting steps claimable: (id, args JSON with the parents' results, when)."""
        cursor.executemany(q.RELEASE_STEP, [(args, self.dt(at), self.uid(i))
                                            for i, args, at in items])
        self.notify_new_jobs(cursor)

    def pending_steps(self, cursor: Any, workflow_id: uuid.UUID,
                      steps: Sequence[int]) -> list[uuid.UUID]:
        marks = ", ".join(["%s"] * len(steps))
        cursor.execute(q.PENDING_STEPS.format(marks=marks), [self.uid(workflow_id), *steps])
        return [self.to_uuid(r[0]) for r in cursor.fetchall()]

    def cancel_steps(self, cursor: Any, ids: Sequence[uuid.UUID], at: datetime,
                     reason: str) -> None:
        if ids:
            stamp = self.dt(at)
            cursor.executemany(q.CANCEL_PENDING, [(stamp, reason, self.uid(i)) for i in ids])
            self.notify_finished(cursor, ids)

    def exits_done(self, cursor: Any, workflow_id: uuid.UUID, count: int, at: datetime) -> None:
        """`count` last steps completed: the workflow is complete when none is left."""
        cursor.execute(q.EXITS_DONE, [count, self.dt(at), count, count,
                                      self.uid(workflow_id)])

    def end_workflow(self, cursor: Any, workflow_id: uuid.UUID, status: int,
                     at: datetime) -> bool:
        """An active workflow to failed or cancelled; False when it was not active."""
        cursor.execute(q.END_WORKFLOW, [self.dt(at), status, self.uid(workflow_id)])
        return bool(cursor.rowcount == 1)

    def reopen_workflow(self, cursor: Any, workflow_id: uuid.UUID) -> bool:
        cursor.execute(q.REOPEN_WORKFLOW, [self.uid(workflow_id)])
        return bool(cursor.rowcount == 1)

    def set_step(self, cursor: Any, job_id: uuid.UUID, workflow_id: uuid.UUID, step: int,
                 waiting: int) -> None:
        """Make a copied job (a resumed step) that step of the workflow."""
        cursor.execute(q.SET_STEP, [self.uid(workflow_id), step, waiting, self.uid(job_id)])

    # -- liveness --------------------------------------------------------------------------
    def heartbeat(self, worker_id: str, hostname: str, pid: int, queues: str,
                  concurrency: int, started_at: datetime, now: datetime) -> None:
        with self.cursor() as cursor:
            cursor.execute(q.HEARTBEAT, [worker_id, hostname, pid, queues, concurrency,
                                         self.dt(started_at), self.dt(now)])

    def forget_worker(self, worker_id: str) -> None:
        with self.cursor() as cursor:
            cursor.execute(q.FORGET_WORKER, [worker_id])

    def lost_jobs(self, cutoff: datetime) -> tuple[list[str], list[Sequence[Any]]]:
        """(ids of workers silent since `cutoff`, CLAIM_COLUMNS + token + worker_id rows of
        the running jobs that they, or attempts with no worker row started before it, hold)."""
        stamp = self.dt(cutoff)
        with self.cursor() as cursor:
            cursor.execute(q.STALE_WORKERS, [stamp])
            dead = [r[0] for r in cursor.fetchall()]
            cursor.execute(q.LOST_JOBS, [stamp, stamp])
            return dead, list(cursor.fetchall())

    def delete_stale_workers(self, worker_ids: Sequence[str], cutoff: datetime) -> None:
        if worker_ids:
            marks = ", ".join(["%s"] * len(worker_ids))
            with self.cursor() as cursor:
                cursor.execute(q.DELETE_STALE_WORKERS.format(marks=marks),
                               [self.dt(cutoff), *worker_ids])

    def acquire_lease(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        """One statement: a lease held by someone else is taken only once it has expired."""
        with self.cursor() as cursor:
            cursor.execute(q.ACQUIRE_LEASE, [name, holder, self.dt(until), self.dt(now)])
            return cursor.fetchone() is not None

    def release_lease(self, name: str, holder: str) -> None:
        with self.cursor() as cursor:
            cursor.execute(q.RELEASE_LEASE, [name, holder])

    # -- the operator's overview -----------------------------------------------------------
    def read_dt(self, value: Any) -> datetime | None:
        """An aware datetime from what a raw read gives back: text (SQLite, where an
        aggregate loses the column's type), a naive UTC value (MariaDB) or an aware one."""
        if value is None:
            return None
        found = parse_datetime(value) if isinstance(value, str) else value
        if not isinstance(found, datetime):
            raise ValueError(f"not a datetime: {value!r}")
        return found if found.tzinfo is not None else found.replace(tzinfo=UTC)

    def overview(self, now: datetime, start: datetime, end: datetime) -> OverviewRows:
        """Six reads, whatever the number of jobs, queues and workers: job counts (two, each
        through a partial index), queue switches, workers with their running jobs, the
        dead-letter total, and finished runs per queue and minute in [start, end)."""
        with self.cursor() as cursor:
            cursor.execute(q.OVERVIEW_PENDING, [self.dt(now)])
            pending = [(str(name), int(n), self.read_dt(oldest))
                       for name, n, oldest in cursor.fetchall()]
            cursor.execute(q.OVERVIEW_STATUSES)
            statuses = [(str(name), int(status), int(n))
                        for name, status, n in cursor.fetchall()]
            cursor.execute(q.OVERVIEW_QUEUE_STATES)
            states = [(str(name), bool(paused)) for name, paused in cursor.fetchall()]
            cursor.execute(q.OVERVIEW_WORKERS)
            workers = [(str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]),
                        self._aware(r[5]), self._aware(r[6]), int(r[7]))
                       for r in cursor.fetchall()]
            cursor.execute(q.OVERVIEW_DEAD_LETTERS)
            dead = int(cursor.fetchone()[0])
            cursor.execute(q.OVERVIEW_THROUGHPUT.format(minute=self.epoch_minute_sql),
                           [self.dt(start), self.dt(end)])
            throughput = [(str(name), int(minute), int(n), int(ok or 0))
                          for name, minute, n, ok in cursor.fetchall()]
        return OverviewRows(pending, statuses, states, workers, dead, throughput)

    def _aware(self, value: Any) -> datetime:
        found = self.read_dt(value)
        if found is None:
            raise ValueError("a worker row without a time")
        return found

    # -- periodic tasks --------------------------------------------------------------------
    def advance_periodic(self, cursor: Any, row_id: int, due: datetime, nxt: datetime,
                         now: datetime) -> bool:
        """Move a schedule from the due time it fires for to its next one; False when
        another scheduler did (or it was disabled) meanwhile."""
        cursor.execute(q.ADVANCE_PERIODIC, [self.dt(nxt), self.dt(now), row_id, self.dt(due),
                                            True])
        return bool(cursor.rowcount == 1)

    # -- throttles -------------------------------------------------------------------------
    def take_rate(self, cursor: Any, key: str, window: int, limit: int) -> bool:
        """Count one run in `key`'s current window; False when the window is full."""
        cursor.execute(q.TAKE_RATE, [key, window, limit])
        return cursor.fetchone() is not None

    def take_slot(self, key: str, limit: int) -> bool:
        with self.cursor() as cursor:
            cursor.execute(q.TAKE_SLOT, [key, limit])
            return cursor.fetchone() is not None

    def release_slots(self, keys: Sequence[str]) -> None:
        if keys:
            with self.cursor() as cursor:
                cursor.executemany(q.RELEASE_SLOT, [(key,) for key in keys])

    def reset_slots(self, prefix: str, counts: dict[str, int]) -> None:
        """Set every counter whose key starts with `prefix` to counts[key] (else 0)."""
        with self.cursor() as cursor:
            cursor.execute(q.SLOT_KEYS, [prefix + "%"])
            for (key,) in cursor.fetchall():
                cursor.execute(q.SET_SLOT, [counts.get(key, 0), key])

    # -- circuit breakers ------------------------------------------------------------------
    def ensure_breaker(self, cursor: Any, task_name: str) -> None:
        """Make sure the task's breaker row exists (closed, no failures, when new)."""
        cursor.execute(q.ENSURE_BREAKER, [task_name])

    def breaker_failures(self, cursor: Any, task_name: str, count: int, now: datetime,
                         window: float, threshold: int) -> bool:
        """Count `count` failed attempts against a closed breaker (a window of `window`
        seconds starts with the first failure after the last one ran out) and open it when
        the window holds `threshold`; True when this call opened it."""
        self.ensure_breaker(cursor, task_name)
        stamp, cutoff = self.dt(now), self.dt(now - timedelta(seconds=window))
        cursor.execute(q.COUNT_BREAKER_FAILURES, [cutoff, count, count, cutoff, stamp,
                                                  task_name])
        cursor.execute(q.OPEN_BREAKER, [stamp, task_name, threshold])
        return bool(cursor.rowcount == 1)

    def breaker_probe_failed(self, cursor: Any, task_name: str, job_id: uuid.UUID,
                             now: datetime) -> bool:
        """The half-open breaker whose probe this job is opens again; True if it was."""
        cursor.execute(q.REOPEN_BREAKER, [self.dt(now), task_name, self.uid(job_id)])
        return bool(cursor.rowcount == 1)

    def breaker_probe_succeeded(self, cursor: Any, task_name: str, job_id: uuid.UUID) -> bool:
        """The half-open breaker whose probe this job is closes; True if it was."""
        cursor.execute(q.CLOSE_BREAKER, [task_name, self.uid(job_id)])
        return bool(cursor.rowcount == 1)

    def take_probe(self, task_name: str, job_id: uuid.UUID, now: datetime,
                   cooldown: float) -> bool:
        """Make this job the probe of the task's breaker (open past its cooldown, or
        half-open with this job, or a probe silent for a cooldown, as its probe); one
        autocommit statement, so of several workers exactly one wins."""
        stamp, cutoff = self.dt(now), self.dt(now - timedelta(seconds=cooldown))
        job = self.uid(job_id)
        with self.cursor() as cursor:
            cursor.execute(q.TAKE_PROBE, [job, stamp, task_name, cutoff, job, cutoff])
            return bool(cursor.rowcount == 1)

    def upkeep(self) -> Upkeep | None:
        """Work a worker runs beside its loop for this database (started now; the worker
        closes it when it stops), or None: nothing by default."""
        return None

    # -- waiting ---------------------------------------------------------------------------
    def watcher(self, interval: float, wake: Callable[[], None] | None = None,
                queues: Sequence[str] | None = None) -> ChangeWatcher:
        """A cheap 'has anything changed?' probe for idle loops. A watcher that learns of
        changes by itself (LISTEN) calls `wake` so a sleeping loop need not wait it out;
        `queues` are those the loop claims from (a watcher that looks for ready jobs)."""
        return ChangeWatcher(self, max(interval, 0.0005), self.fallback_interval)

    def job_watcher(self, job_id: uuid.UUID, interval: float) -> ChangeWatcher:
        """A watcher for one job's outcome (JobResult.result waits on it)."""
        watcher = self.watcher(interval)
        watcher.reset()
        return watcher

    def configure_connection(self, connection: BaseDatabaseWrapper) -> None:
        """Per-connection set-up (pragmas); nothing by default."""
