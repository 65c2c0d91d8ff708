"""Rate limits and concurrency limits that hold across every worker, kept in shared counter
rows (Throttle) that each worker updates with one conditional statement."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.db.base import JOB, ClaimedJob
from taskito.execution import Outcome
from taskito.registry import TaskSpec, parse_rate_limit, registry
from taskito.scheduling import SchedulingMixin

#: job events (throttled, deferred for an unknown task)
logger = logging.getLogger("taskito.job")

THROTTLE = "taskito_throttle"
#: how long a job that found its task's concurrency limit full waits before another try
SLOT_RETRY = timedelta(seconds=0.5)
#: how long a job of a task this worker does not know is put back before the next try (short:
#: in a rolling deploy a worker that knows the task should get it soon)
UNKNOWN_RETRY = timedelta(seconds=2)


def _rate_limits(job: ClaimedJob, spec: TaskSpec | None) -> list[tuple[str, int, int]]:
    limits = []
    if spec is not None and spec.rate_limit:
        limits.append((f"rate:task:{job.task_name}", *parse_rate_limit(spec.rate_limit)))
    queue_limit = (taskito_settings.get("QUEUE_RATE_LIMITS") or {}).get(job.queue)
    if queue_limit:
        limits.append((f"rate:queue:{job.queue}", *parse_rate_limit(queue_limit)))
    return limits


def _slot_key(task_name: str) -> str:
    return f"conc:task:{task_name}"


class ThrottlingMixin(SchedulingMixin):
    """Admission of claimed jobs under rate and concurrency limits."""

    def needs_admission(self, job: ClaimedJob) -> bool:
        spec = registry.find(job.task_name)
        return bool((spec is not None and (spec.rate_limit or spec.max_concurrent))
                    or (taskito_settings.get("QUEUE_RATE_LIMITS") or {}).get(job.queue))

    def admit(self, jobs: Sequence[ClaimedJob], now: datetime | None = None
              ) -> tuple[list[ClaimedJob], list[tuple[ClaimedJob, datetime]]]:
        """Split claimed jobs into those that may run now and those to put back until a
        time (their rate window is used up, or their task's concurrency limit is full)."""
        now = now or timezone.now()
        run: list[ClaimedJob] = []
        later: list[tuple[ClaimedJob, datetime]] = []
        for job in jobs:
            spec = registry.find(job.task_name)
            slot = spec.max_concurrent if spec is not None else None
            if slot and not self._take_slot(_slot_key(job.task_name), slot):
                later.append((job, now + SLOT_RETRY))
                continue
            until = self._take_rates(_rate_limits(job, spec), now)
            if until is None:
                run.append(job)
                continue
            if slot:
                self._give_back_slots([job.task_name])
            later.append((job, until))
        return run, later

    def _take_rates(self, limits: list[tuple[str, int, int]], now: datetime
                    ) -> datetime | None:
        """Count one run against each limit; None if all allow it, else when to try again."""
        stamp = now.timestamp()
        with self.backend.connection.cursor() as cursor:
            for key, count, period in limits:
                window = int(stamp // period)
                t = THROTTLE
                cursor.execute(
                    f"INSERT INTO {t} (key, window_no, count) VALUES (%s, %s, 1) "
                    f"ON CONFLICT (key) DO UPDATE SET window_no = excluded.window_no, count = "
                    f"CASE WHEN {t}.window_no = excluded.window_no THEN {t}.count + 1 ELSE 1 "
                    f"END WHERE {t}.window_no <> excluded.window_no OR {t}.count < %s "
                    f"RETURNING count", [key, window, count])
                if cursor.fetchone() is None:
                    return datetime.fromtimestamp((window + 1) * period, tz=UTC)
        return None

    def _take_slot(self, key: str, limit: int) -> bool:
        with self.backend.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {THROTTLE} (key, window_no, count) VALUES (%s, 0, 1) "
                f"ON CONFLICT (key) DO UPDATE SET count = {THROTTLE}.count + 1 "
                f"WHERE {THROTTLE}.count < %s RETURNING count", [key, limit])
            return cursor.fetchone() is not None

    def attempts_ended(self, task_names: Sequence[str]) -> None:
        self._give_back_slots(task_names)

    def _give_back_slots(self, task_names: Sequence[str]) -> None:
        """Release concurrency slots of finished (or handed back) attempts."""
        limited = [n for n in task_names
                   if (spec := registry.find(n)) is not None and spec.max_concurrent]
        if not limited:
            return
        with self.backend.connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {THROTTLE} SET count = count - 1 "
                               f"WHERE key = %s AND count > 0",
                               [(_slot_key(n),) for n in limited])

    def defer(self, jobs: Sequence[tuple[ClaimedJob, datetime]], *, log: bool = True) -> int:
        """Put throttled jobs back to pending until their time, spending neither a retry nor
        the attempt their claim counted."""
        if not jobs:
            return 0
        b = self.backend
        with transaction.atomic(using=self.using), b.connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {JOB} SET status = 0, worker_id = NULL, claim_token = NULL, "
                f"scheduled_at = %s, attempts = attempts - 1 "
                f"WHERE id = %s AND claim_token = %s AND status = 1",
                [(b.dt(until), b.uid(job.id), job.token) for job, until in jobs])
        for job, until in jobs if log else ():
            logger.info("throttled job=%s task=%s until=%s", job.id, job.task_name,
                        until.isoformat())
        return len(jobs)

    def hold_unknown(self, jobs: list[ClaimedJob], now: datetime | None = None,
                     warned: set[str] | None = None) -> list[ClaimedJob]:
        """The claimed jobs whose task this process knows. The others (a deploy has not
        reached this worker yet) go back to pending, no retry spent, until UNKNOWN_TASK_GRACE
        seconds after the job's creation; then to the dead-letter queue."""
        # each name resolved once: a batch usually holds one or two
        missing = {name for name in {job.task_name for job in jobs} if not _known(name)}
        if missing:
            unknown = [job for job in jobs if job.task_name in missing]
            self._hold(unknown, now or timezone.now(), warned)
            jobs = [job for job in jobs if job.task_name not in missing]
        return jobs

    def _hold(self, jobs: Sequence[ClaimedJob], now: datetime,
              warned: set[str] | None) -> None:
        """Defer or dead-letter jobs of unknown tasks; log each task name once per `warned`."""
        grace = float(taskito_settings.UNKNOWN_TASK_GRACE)
        created = dict(self.job_model.objects.using(self.using)
                       .filter(id__in=[job.id for job in jobs]).values_list("id", "created_at"))
        later: list[tuple[ClaimedJob, datetime]] = []
        expired: list[Outcome] = []
        for job in jobs:
            deadline = created.get(job.id, now) + timedelta(seconds=grace)
            if now >= deadline:
                expired.append(Outcome(job, "dead", 0.0, error=_unknown_error(job, grace)))
                continue
            later.append((job, min(now + UNKNOWN_RETRY, deadline)))
            if warned is None or job.task_name not in warned:
                logger.warning(
                    "unknown task=%s job=%s: no task of that name is registered in this "
                    "worker; its jobs wait up to %gs after their creation (UNKNOWN_TASK_GRACE) "
                    "for a worker that knows it, then go to the dead-letter queue. Hint: "
                    "deploy the new code to every worker and restart them (is the task in an "
                    "installed app's tasks module?)", job.task_name, job.id, grace)
                if warned is not None:
                    warned.add(job.task_name)
            logger.debug("deferred job=%s task=%s until=%s reason=unknown-task", job.id,
                         job.task_name, later[-1][1].isoformat())
        self.defer(later, log=False)
        if expired:
            self.finish(expired, now=now)

    def repair_slots(self) -> None:
        """Set every concurrency counter to the number of jobs of its task that really run
        (a worker that died cannot give its slots back). The lifeline leader calls this."""
        rows: Any = (self.job_model.objects.using(self.using).filter(status=1).order_by()
                     .values_list("task_name"))
        from django.db.models import Count

        running = dict(rows.annotate(n=Count("id")))
        with self.backend.connection.cursor() as cursor:
            cursor.execute(f"SELECT key FROM {THROTTLE} WHERE key LIKE %s", ["conc:task:%"])
            keys = [r[0] for r in cursor.fetchall()]
            for key in keys:
                cursor.execute(f"UPDATE {THROTTLE} SET count = %s WHERE key = %s",
                               [running.get(key.removeprefix("conc:task:"), 0), key])


def _known(task_name: str) -> bool:
    try:
        return registry.resolve(task_name) is not None
    except Exception:  # a resolver bug: the executor's guard reports it as the job's error
        return True


def _unknown_error(job: ClaimedJob, grace: float) -> str:
    return (f"TaskNotRegistered: no task named {job.task_name!r} is registered in this worker, "
            f"and the job is older than UNKNOWN_TASK_GRACE ({grace:g} s); is the task defined "
            "in an installed app's tasks module, and do the workers run the current code?")
