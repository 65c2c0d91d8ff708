"""The engine: what workers and the lifeline do to rows (the WORKER's verbs). The runtime
calls it explicitly; it is the only writer of the attempts it claims.

    engine = Engine(queue)
    jobs = engine.claim(worker_id="w1", limit=8)
    engine.finish([...outcomes...])
"""

from __future__ import annotations

from datetime import datetime

from taskito.engine.attempts import AttemptsMixin, log_received
from taskito.engine.breakers import BreakersMixin
from taskito.engine.housekeeping import HousekeepingMixin
from taskito.engine.jobs import ClaimedJob, Outcome, OutcomeKind
from taskito.engine.liveness import LivenessMixin
from taskito.engine.throttles import ThrottlesMixin
from taskito.registry import registry

__all__ = ["ClaimedJob", "Engine", "Outcome", "OutcomeKind"]


class Engine(AttemptsMixin, LivenessMixin, HousekeepingMixin, ThrottlesMixin, BreakersMixin):
    """The worker's verbs over one Queue's rows; sibling parts over one EngineBase."""

    def screen(self, jobs: list[ClaimedJob], now: datetime | None = None,
               warned: set[str] | None = None) -> list[ClaimedJob]:
        """The claimed jobs that may run now. The others go back to pending, spending no
        retry: jobs of tasks this process does not know (for UNKNOWN_TASK_GRACE, see
        `hold_unknown`), jobs of a task whose circuit breaker is open (see
        `split_by_breakers`), and jobs whose rate or concurrency limit is used up (until it
        frees)."""
        jobs = self.hold_unknown(jobs, now, warned)
        if registry.breakers:  # the one check every other task pays
            jobs, held = self.split_by_breakers(jobs, now)
            self.defer(held, log=False)
        # asked once per (task, queue): a batch usually holds one or two
        kinds = {(job.task_name, job.queue): job for job in jobs}
        if any(self.needs_admission(job) for job in kinds.values()):
            limited = [job for job in jobs if self.needs_admission(job)]
            run, later = self.admit(limited, now)
            self.defer(later)
            allowed = {job.id for job in run}
            jobs = [job for job in jobs if job.id in allowed or not self.needs_admission(job)]
        log_received(jobs)
        return jobs
