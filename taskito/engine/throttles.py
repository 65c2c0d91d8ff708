"""Rate limits and concurrency limits that hold across every worker, kept in shared counter
rows (Throttle) that each worker updates with one conditional statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.db import Dialect
from taskito.engine.base import EngineBase
from taskito.engine.jobs import ClaimedJob
from taskito.registry import TaskSpec, parse_rate_limit, registry
from taskito.states import JobStatus

#: how long a job that found its task's concurrency limit full waits before another try
SLOT_RETRY = timedelta(seconds=0.5)
SLOT_PREFIX = "conc:task:"


def _rate_limits(job: ClaimedJob, spec: TaskSpec | None) -> list[tuple[str, int, int]]:
    limits = []
    if spec is not None and spec.rate_limit:
        limits.append((f"rate:task:{job.task_name}", *parse_rate_limit(spec.rate_limit)))
    queue_limit = (taskito_settings.get("QUEUE_RATE_LIMITS") or {}).get(job.queue)
    if queue_limit:
        limits.append((f"rate:queue:{job.queue}", *parse_rate_limit(queue_limit)))
    return limits


def holds_slot(task_name: str) -> bool:
    """Whether an attempt of this task holds a concurrency slot (`max_concurrent`)."""
    spec = registry.find(task_name)
    return spec is not None and bool(spec.max_concurrent)


def release_slots(dialect: Dialect, task_names: Sequence[str]) -> None:
    """Give back the concurrency slots of attempts that ended (or were handed back). Called
    explicitly wherever attempts end, inside that transaction."""
    dialect.release_slots([SLOT_PREFIX + n for n in task_names if holds_slot(n)])


class ThrottlesMixin(EngineBase):
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
            if slot and not self.dialect.take_slot(SLOT_PREFIX + job.task_name, slot):
                later.append((job, now + SLOT_RETRY))
                continue
            until = self._take_rates(_rate_limits(job, spec), now)
            if until is None:
                run.append(job)
                continue
            if slot:
                release_slots(self.dialect, [job.task_name])
            later.append((job, until))
        return run, later

    def _take_rates(self, limits: list[tuple[str, int, int]], now: datetime
                    ) -> datetime | None:
        """Count one run against each limit; None if all allow it, else when to try again."""
        stamp = now.timestamp()
        with self.dialect.cursor() as cursor:
            for key, count, period in limits:
                window = int(stamp // period)
                if not self.dialect.take_rate(cursor, key, window, count):
                    return datetime.fromtimestamp((window + 1) * period, tz=UTC)
        return None

    def repair_slots(self) -> None:
        """Set every concurrency counter to the number of jobs of its task that really run
        (a worker that died cannot give its slots back). The lifeline leader calls this."""
        rows = (self.queue.job_model.objects.using(self.using).filter(status=JobStatus.RUNNING)
                .order_by().values_list("task_name").annotate(n=Count("id")))
        self.dialect.reset_slots(SLOT_PREFIX, {SLOT_PREFIX + name: n for name, n in rows})
