"""Circuit breakers shared by every worker: a task whose attempts keep failing stops running
for a while (its jobs wait, spending no retry), then one probe job decides whether it runs
again. State lives in one CircuitBreaker row per task, moved by conditional statements.

What counts as a failure: an attempt that ended in a retry or the dead-letter queue (an
exception, a hard timeout, a lost worker). A cancelled attempt does not count, nor does a
job deferred by a throttle or an open breaker (it never ran).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from taskito.db import Dialect
from taskito.engine.base import EngineBase
from taskito.engine.jobs import ClaimedJob, Outcome
from taskito.registry import BreakerSpec, registry
from taskito.states import BreakerState

logger = logging.getLogger("taskito.breaker")
#: while a probe runs, the task's other jobs look again this often (at most the cooldown)
PROBE_WAIT = timedelta(seconds=1)


def _spec(task_name: str) -> BreakerSpec | None:
    spec = registry.find(task_name)
    return None if spec is None else spec.circuit_breaker


class BreakersMixin(EngineBase):
    """Holding back the jobs of tasks whose breaker is open, and electing the probe."""

    def split_by_breakers(self, jobs: list[ClaimedJob], now: datetime | None = None
                          ) -> tuple[list[ClaimedJob], list[tuple[ClaimedJob, datetime]]]:
        """(jobs that may run, (job, until) to put back): jobs of a task whose breaker is
        open wait until its cooldown has passed, and while it is half-open, until its probe
        has reported (looking again every PROBE_WAIT). Of the jobs that find a breaker
        ready for a probe, exactly one (across every worker) runs."""
        names = registry.breakers
        mine = [job for job in jobs if job.task_name in names] if names else []
        if not mine:
            return jobs, []
        now = now or timezone.now()
        states = self.breaker_states({job.task_name for job in mine})
        if not states:  # every breaker involved is closed: one query, nothing held
            return jobs, []
        later: list[tuple[ClaimedJob, datetime]] = []
        for job in mine:
            state, spec = states.get(job.task_name), _spec(job.task_name)
            if state is None or spec is None:
                continue
            until = self._wait_for_breaker(job, state, spec, now)
            if until is not None:
                later.append((job, until))
                logger.info("deferred job=%s task=%s until=%s reason=circuit-open", job.id,
                            job.task_name, until.isoformat())
        held = {job.id for job, _ in later}
        return [job for job in jobs if job.id not in held], later

    def breaker_states(self, names: set[str]) -> dict[str, dict[str, Any]]:
        """{task: row} of the breakers among `names` that are not closed (one query)."""
        from taskito.models import CircuitBreaker

        rows = (CircuitBreaker.objects.using(self.using).filter(task_name__in=sorted(names))
                .exclude(state=BreakerState.CLOSED)
                .values("task_name", "state", "opened_at", "probe_job_id", "probe_at"))
        return {row["task_name"]: dict(row) for row in rows}

    def _wait_for_breaker(self, job: ClaimedJob, state: dict[str, Any], spec: BreakerSpec,
                          now: datetime) -> datetime | None:
        """None when `job` may run (it is, or became, the probe); else when to look again.
        `state` is updated when this job takes the probe, for the rest of the batch."""
        cooldown = timedelta(seconds=spec.cooldown)
        if state["state"] == BreakerState.OPEN and now < state["opened_at"] + cooldown:
            return state["opened_at"] + cooldown
        if state["state"] == BreakerState.HALF_OPEN and not _may_probe(job.id, state, now,
                                                                     cooldown):
            return now + min(PROBE_WAIT, cooldown)
        if self.dialect.take_probe(job.task_name, job.id, now, spec.cooldown):
            state.update(state=BreakerState.HALF_OPEN, probe_job_id=job.id, probe_at=now)
            logger.warning("half-open task=%s probe=%s", job.task_name, job.id)
            return None
        return now + min(PROBE_WAIT, cooldown)  # another worker's job is the probe


def _may_probe(job_id: uuid.UUID, state: dict[str, Any], now: datetime,
               cooldown: timedelta) -> bool:
    """A half-open breaker's probe is this job, or has been silent for a whole cooldown."""
    return bool(state["probe_job_id"] == job_id or state["probe_at"] is None
                or state["probe_at"] + cooldown <= now)


def record_outcomes(dialect: Dialect, cursor: Any, applied: Sequence[Outcome],
                    now: datetime) -> None:
    """Move the breakers of tasks that have one after their attempts ended (inside the
    finishing transaction): the probe's success closes its breaker, its failure reopens it,
    other failures are counted and may open it. Tasks one at a time, in name order, so two
    workers finishing at once lock breaker rows in the same order."""
    names = registry.breakers
    mine = [o for o in applied if o.job.task_name in names] if names else []
    by_task: dict[str, list[Outcome]] = {}
    for o in mine:
        by_task.setdefault(o.job.task_name, []).append(o)
    for name in sorted(by_task):
        spec = _spec(name)
        if spec is not None:
            _record_task(dialect, cursor, name, spec, by_task[name], now)


def _record_task(dialect: Dialect, cursor: Any, name: str, spec: BreakerSpec,
                 outcomes: Sequence[Outcome], now: datetime) -> None:
    failures = 0
    for o in outcomes:
        if o.kind == "complete":
            if dialect.breaker_probe_succeeded(cursor, name, o.job.id):
                logger.warning("closed task=%s probe=%s succeeded", name, o.job.id)
        elif o.kind in ("retry", "dead"):
            if dialect.breaker_probe_failed(cursor, name, o.job.id, now):
                logger.error("reopened task=%s probe=%s failed; jobs wait %gs", name,
                             o.job.id, spec.cooldown)
            else:
                failures += 1
    if failures and dialect.breaker_failures(cursor, name, failures, now, spec.window,
                                             spec.threshold):
        logger.error("opened task=%s after %d failures within %gs; jobs wait %gs", name,
                     spec.threshold, spec.window, spec.cooldown)
