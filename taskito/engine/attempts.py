"""The life of one attempt: claim, progress and logs, finish (in batches), hand-back and the
rescue of attempts whose worker died.

Every write names the attempt's claim token: a worker that was declared dead and comes back
updates nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito import middleware, signals
from taskito.conf import taskito_settings
from taskito.engine.base import EngineBase
from taskito.engine.breakers import record_outcomes as record_breakers
from taskito.engine.jobs import ClaimedJob, Outcome, OutcomeKind
from taskito.engine.throttles import holds_slot, release_slots
from taskito.engine.workflows import advance as advance_workflows
from taskito.exceptions import ConfigurationError, TaskFailedError
from taskito.ids import new_id
from taskito.registry import registry
from taskito.serialization import UNSET, dumps
from taskito.states import JobStatus

#: one line per job event (received, succeeded, retried, failed, dead, cancelled, ...)
logger = logging.getLogger("taskito.job")
#: rescues of jobs whose worker was lost
lifeline_logger = logging.getLogger("taskito.lifeline")
#: how long a job of a task this worker does not know is put back before the next try (short:
#: in a rolling deploy a worker that knows the task should get it soon)
UNKNOWN_RETRY = timedelta(seconds=2)

_ENDS = {"dead": JobStatus.DEAD, "cancelled": JobStatus.CANCELLED}
_LABELS = {"complete": "complete", "retry": "pending", "dead": "dead", "cancelled": "cancelled"}


class AttemptsMixin(EngineBase):
    """Claim, progress, logs and finishing: what a worker does to the jobs it runs."""

    def claim(self, *, worker_id: str, limit: int, queues: Sequence[str] | None = None,
              now: datetime | None = None) -> list[ClaimedJob]:
        """Mark up to `limit` ready jobs running for this worker and return them in claim
        order (priority, then due time, then id)."""
        if limit <= 0:
            return []
        d = self.dialect
        token = uuid.uuid4().hex
        rows = d.claim(queues=queues, limit=limit, now=now or timezone.now(),
                       worker_id=worker_id, token=token)
        jobs = [ClaimedJob.from_row(r, token, d.to_uuid) for r in rows]
        jobs.sort(key=lambda j: (-j.priority, j.scheduled_at, j.id))
        return jobs

    def claim_one(self, job_id: uuid.UUID, *, worker_id: str,
                  now: datetime | None = None) -> ClaimedJob | None:
        """Claim one pending job by id whatever its due time (once its dependencies are
        complete): how test mode and `taskito.testing.run_jobs` run a job in their thread.
        None when it is not pending (or still waits for a dependency)."""
        d = self.dialect
        token = uuid.uuid4().hex
        row = d.claim_job(job_id, now=now or timezone.now(), worker_id=worker_id, token=token)
        return None if row is None else ClaimedJob.from_row(row, token, d.to_uuid)

    def finish(self, outcomes: Sequence[Outcome], now: datetime | None = None) -> int:
        """Write a batch of outcomes in one transaction; returns how many were applied.
        Signals go out after the commit, each receiver behind a guard."""
        if not outcomes:
            return 0
        d = self.dialect
        now = now or timezone.now()
        at = d.dt(now)
        done = [o for o in outcomes if o.kind == "complete"]
        dead_ids: dict[uuid.UUID, uuid.UUID] = {}
        if len(done) == len(outcomes) and _plain(done):
            # the common batch: one statement where the database can (see finish_completed)
            landed = d.finish_completed(
                [(o.job.id, o.job.token, o.result, o.wall_ms, o.job.task_name, o.job.queue)
                 for o in done], at)
            applied = _landed(done, landed)
        else:
            applied = self._write(outcomes, done, dead_ids, now, at)
        self._finished_signals(applied, dead_ids)
        self._finished_middleware(applied)
        _log_outcomes(applied, dead_ids, now)
        return len(applied)

    def _write(self, outcomes: Sequence[Outcome], done: Sequence[Outcome],
               dead_ids: dict[uuid.UUID, uuid.UUID], now: datetime, at: Any) -> list[Outcome]:
        """Every kind of outcome, with what follows from it, in one transaction; returns the
        outcomes applied and fills `dead_ids` with the dead letters made."""
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            applied = _landed(done, d.complete_jobs(cursor, [(o.job.id, o.job.token, o.result)
                                                             for o in done], at)) if done else []
            for o in outcomes:
                if o.kind != "complete" and self._finish_one(cursor, o, at):
                    applied.append(o)
                    if o.kind == "dead":
                        dead_ids[o.job.id] = new_id()
                        d.insert_dead_letter(cursor, dead_ids[o.job.id], o.job.id, at)
            ended = [o for o in applied if o.kind in _ENDS]
            d.notify_finished(cursor, [o.job.id for o in ended])
            for o in ended:
                verb = "failed" if o.kind == "dead" else "cancelled"
                d.cancel_dependents(cursor, [o.job.id], now, f"dependency {verb}: {o.job.id}")
            flows = [o for o in applied if o.job.workflow_id is not None]
            if flows:  # only steps of a workflow pay for this (see engine.workflows)
                advance_workflows(d, cursor, flows, now)
            release_slots(d, [o.job.task_name for o in applied])
            if registry.breakers:  # only tasks with a circuit breaker pay for this
                record_breakers(d, cursor, applied, now)
            d.insert_metrics(cursor, [(d.uid(o.job.id), o.job.task_name, o.job.queue,
                                       o.kind == "complete", o.wall_ms, at) for o in applied])
        return applied

    def _finish_one(self, cursor: Any, o: Outcome, at: Any) -> bool:
        d = self.dialect
        if o.kind == "retry":
            moved = d.retry_job(cursor, o.job.id, o.job.token, o.retry_at, o.error)
        else:
            moved = d.end_job(cursor, o.job.id, o.job.token, _ENDS[o.kind], o.error, at)
        if not moved:
            _superseded(o)
            return False
        if o.kind in ("retry", "dead") and o.error is not None:
            d.insert_error(cursor, o.job.id, o.job.attempts, o.error, o.traceback, at)
        return True

    def _finished_signals(self, applied: Sequence[Outcome],
                          dead_ids: dict[uuid.UUID, uuid.UUID]) -> None:
        if signals.job_finished.has_listeners(type(self)):
            for o in applied:
                signals.send_guarded(signals.job_finished, sender=type(self), job_id=o.job.id,
                                     task_name=o.job.task_name, queue=o.job.queue,
                                     status=_LABELS[o.kind], error=o.error)
        if dead_ids and signals.job_dead.has_listeners(type(self)):
            for o in applied:
                if o.job.id in dead_ids:
                    signals.send_guarded(signals.job_dead, sender=type(self), job_id=o.job.id,
                                         dead_letter_id=dead_ids[o.job.id],
                                         task_name=o.job.task_name, error=o.error)

    def _finished_middleware(self, applied: Sequence[Outcome]) -> None:
        """Middleware's on_retry / on_dead_letter / on_cancel, once those outcomes are
        committed (beside the signals); each hook behind a guard."""
        try:
            if not middleware.configured():
                return
        except ConfigurationError as exc:  # the system check reports it too
            logger.error("middleware not loaded error=%s", exc)
        for o in applied:
            if o.kind == "complete":
                continue
            hooks = middleware.safe_chain(registry.find(o.job.task_name), o.job.id)
            if not hooks:
                continue
            ctx = self.hook_context(o.job)
            error = o.exception or TaskFailedError(o.error or o.kind)
            if o.kind == "retry":
                middleware.call(hooks, "on_retry", ctx, error, o.job.retry_count + 1)
            elif o.kind == "dead":
                middleware.call(hooks, "on_dead_letter", ctx, error)
            else:
                middleware.call(hooks, "on_cancel", ctx)

    def hook_context(self, job: ClaimedJob) -> middleware.TaskContext:
        """A middleware context for a claimed attempt (arguments decoded, metadata read,
        on first use)."""
        model, using = self.queue.job_model, self.using

        def metadata() -> str | None:
            value: str | None = model.objects.using(using).filter(id=job.id).values_list(
                "metadata", flat=True).first()
            return value

        return middleware.TaskContext(
            job_id=job.id, task_name=job.task_name, queue=job.queue, args=job.args,
            kwargs=job.kwargs, attempt=job.attempts, retry_count=job.retry_count,
            max_retries=job.max_retries, metadata_loader=metadata)

    def requeue(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running attempts back to pending at once, without spending a retry (a worker
        that stops before they finished); returns how many were still this attempt's."""
        if not jobs:
            return 0
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            count = d.requeue(cursor, [(j.id, j.token) for j in jobs])
            if count:
                release_slots(d, [j.task_name for j in jobs])
        return count

    def defer(self, jobs: Sequence[tuple[ClaimedJob, datetime]], *, log: bool = True) -> int:
        """Put claimed jobs back to pending until their time (a throttle, an unknown task),
        spending neither a retry nor the attempt their claim counted."""
        if not jobs:
            return 0
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            d.defer(cursor, [(job.id, job.token, until) for job, until in jobs])
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
        created = dict(self.queue.job_model.objects.using(self.using)
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

    def rescue_lost_jobs(self, stale_after: float, now: datetime | None = None) -> int:
        """Put the running jobs of workers silent for `stale_after` seconds through the
        failure path ("worker lost": the attempt counts, so a job that kills its worker ends
        in the dead-letter queue after its retries); returns how many were rescued."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=stale_after)
        dead, rows = self.dialect.lost_jobs(cutoff)
        outcomes = [self._lost(row, now) for row in rows]
        applied = self.finish(outcomes, now=now) if outcomes else 0
        self.dialect.delete_stale_workers(dead, cutoff)
        for o, row in zip(outcomes, rows, strict=True):
            lifeline_logger.warning("rescued job=%s task=%s lost_worker=%s outcome=%s",
                                    o.job.id, o.job.task_name, row[-1], o.kind)
        return applied

    def _lost(self, row: Sequence[Any], now: datetime) -> Outcome:
        *claim, token, worker_id = row
        job = ClaimedJob.from_row(claim, token, self.dialect.to_uuid)
        kind: OutcomeKind = "retry" if job.retry_count < job.max_retries else "dead"
        return Outcome(job, kind, 0.0, retry_at=now,
                       error=f"worker lost: worker {worker_id} stopped while running the job")

    # -- from inside a running task --------------------------------------------------------
    def set_progress(self, job_id: uuid.UUID, token: str, progress: int,
                     partial: Any = UNSET) -> bool:
        """Record progress of a running attempt, and its partial result when given; False if
        the attempt no longer owns the job."""
        extra: dict[str, Any] = {}
        if partial is UNSET:
            changed = self.dialect.set_progress(job_id, token, progress)
        else:
            changed = self.dialect.set_progress(job_id, token, progress,
                                                dumps(partial, "partial result"),
                                                with_partial=True)
            extra["partial"] = partial
        if changed and signals.job_progress.has_listeners(type(self)):
            signals.send_guarded(signals.job_progress, sender=type(self), job_id=job_id,
                                 progress=progress, **extra)
        return changed

    def add_log(self, job_id: uuid.UUID, task_name: str, level: str, message: str,
                extra: dict[str, Any] | None = None) -> None:
        """Store one TaskLog row."""
        extra_json = None if extra is None else dumps(extra, "log extra")
        self.queue.log_model.objects.using(self.using).create(
            job_id=job_id, task_name=task_name, level=level, message=message, extra=extra_json,
            logged_at=timezone.now())

    def is_cancel_requested(self, job_id: uuid.UUID) -> bool:
        return bool(self.queue.job_model.objects.using(self.using)
                    .filter(id=job_id, cancel_requested=True).exists())

    def cancel_requested_among(self, job_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these running jobs someone asked to cancel (one query)."""
        if not job_ids:
            return set()
        return set(self.queue.job_model.objects.using(self.using)
                   .filter(id__in=list(job_ids), cancel_requested=True)
                   .values_list("id", flat=True))


def log_received(jobs: Sequence[ClaimedJob]) -> None:
    """One INFO line per claimed job that is about to run (not for those deferred by a
    throttle or for an unknown task, which are claimed again later)."""
    if jobs and logger.isEnabledFor(logging.INFO):  # checked once per batch
        for job in jobs:
            logger.info("received job=%s task=%s queue=%s attempt=%d", job.id, job.task_name,
                        job.queue, job.attempts)


def _landed(done: Sequence[Outcome], landed: set[uuid.UUID]) -> list[Outcome]:
    """The completions whose attempt still owned its job; the others are logged."""
    applied = []
    for o in done:
        if o.job.id in landed:
            applied.append(o)
        else:
            _superseded(o)
    return applied


def _plain(done: Sequence[Outcome]) -> bool:
    """Whether finishing these completed attempts writes nothing but their rows and metrics:
    no workflow step, no concurrency slot to give back, no circuit breaker to tell."""
    names = set()
    for o in done:
        if o.job.workflow_id is not None:
            return False
        names.add(o.job.task_name)
    if registry.breakers and not registry.breakers.isdisjoint(names):
        return False
    return not any(holds_slot(n) for n in names)


def _log_outcomes(applied: Sequence[Outcome], dead_ids: dict[uuid.UUID, uuid.UUID],
                  now: datetime) -> None:
    """One line per recorded outcome: `succeeded` and `cancelled` at INFO, `retried` at
    WARNING, `failed` (an error not retried although retries were left) and `dead` (retries
    used up) at ERROR; the last two name their dead letter."""
    info = logger.isEnabledFor(logging.INFO)  # once per batch: the per-job cost stays small
    for o in applied if info else [o for o in applied if o.kind in ("retry", "dead")]:
        job, seconds = o.job, o.wall_ms / 1000
        if o.kind == "complete":
            logger.info("succeeded job=%s task=%s attempt=%d duration=%.3fs", job.id,
                        job.task_name, job.attempts, seconds)
        elif o.kind == "retry":
            delay = (o.retry_at - now).total_seconds() if o.retry_at is not None else 0.0
            logger.warning("retried job=%s task=%s attempt=%d duration=%.3fs retry_in=%.2fs "
                           "error=%r", job.id, job.task_name, job.attempts, seconds,
                           max(delay, 0.0), _short(o.error))
        elif o.kind == "dead":
            word = "failed" if job.retry_count < job.max_retries else "dead"
            logger.error("%s job=%s task=%s attempt=%d duration=%.3fs dead_letter=%s "
                         "error=%r", word, job.id, job.task_name, job.attempts, seconds,
                         dead_ids.get(job.id), _short(o.error))
        else:
            logger.info("cancelled job=%s task=%s attempt=%d duration=%.3fs", job.id,
                        job.task_name, job.attempts, seconds)


def _short(error: str | None, limit: int = 500) -> str | None:
    """An error message cut to `limit` characters, so one log line stays one line."""
    if error is None or len(error) <= limit:
        return error
    return error[:limit] + "..."


def _known(task_name: str) -> bool:
    try:
        return registry.resolve(task_name) is not None
    except Exception:  # a resolver bug: the executor's guard reports it as the job's error
        return True


def _unknown_error(job: ClaimedJob, grace: float) -> str:
    return (f"TaskNotRegistered: no task named {job.task_name!r} is registered in this worker, "
            f"and the job is older than UNKNOWN_TASK_GRACE ({grace:g} s); is the task defined "
            "in an installed app's tasks module, and do the workers run the current code?")


def _superseded(o: Outcome) -> None:
    logger.warning("superseded job=%s task=%s token=%s: a newer attempt owns the job; "
                   "outcome %s dropped", o.job.id, o.job.task_name, o.job.token, o.kind)
