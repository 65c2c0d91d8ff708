"""The worker loop: claim as many jobs as there are free slots, run them on a thread pool,
write their outcomes in batches, and sleep on a cheap change signal when idle."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from queue import Empty, SimpleQueue

from django.db import DatabaseError
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.engine import ClaimedJob, Engine, Outcome, OutcomeKind
from taskito.queue import Queue
from taskito.queue import queue as default_queue
from taskito.registry import registry
from taskito.runtime.aio import AsyncRunner
from taskito.runtime.executor import Executor
from taskito.runtime.lifeline import Lifeline
from taskito.runtime.processes import ProcessExecutor
from taskito.runtime.threads import JobThreads

#: the worker's own life: start, stop, drain, database errors, timeouts
logger = logging.getLogger("taskito.worker")

#: how long to back off after a database error, doubling up to the maximum
ERROR_BACKOFF = (0.05, 5.0)
#: seconds of work (at the recent average job duration) a worker claims beyond its threads
PREFETCH_SECONDS = 0.01
MAX_PREFETCH = 64
#: seconds after the last async job was claimed that claims still make room for the loop
ASYNC_SHARE_FOR = 2.0


def _wants(held: int, slots: int, capacity: int) -> bool:
    """A pool wants jobs when a slot is idle or its claimed buffer is half empty."""
    free = capacity - held
    return free > 0 and (held < slots or free >= max(1, (capacity - slots) // 2))

#: told of each batch of outcomes once it is written, and of how many job slots are busy then
#: (also after a claim, with no outcomes): how `--metrics-port` counts, at no cost when unset
Observer = Callable[[Sequence[Outcome], int], None]


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker: `run()` until stopped (or empty with `burst`), or `run_once()` to step."""

    def __init__(self, queue: Queue | None = None, *, queues: Sequence[str] | None = None,
                 concurrency: int | None = None, burst: bool = False,
                 max_jobs: int | None = None, worker_id: str | None = None,
                 poll_interval: float | None = None, idle_recheck: float | None = None,
                 prefetch: int | None = None, drain_timeout: float | None = None,
                 heartbeat_interval: float | None = None,
                 stale_after: float | None = None, pool: str = "thread",
                 observer: Observer | None = None,
                 async_concurrency: int | None = None) -> None:
        self.queue = queue or default_queue
        self.engine = Engine(self.queue)
        self.queues = list(queues) if queues else None
        self.concurrency = int(taskito_settings.CONCURRENCY if concurrency is None
                               else concurrency)
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        #: `async def` jobs run at once on the worker's event loop (thread pool only)
        self.async_concurrency = int(taskito_settings.ASYNC_CONCURRENCY
                                     if async_concurrency is None else async_concurrency)
        if self.async_concurrency < 1:
            raise ValueError("async_concurrency must be >= 1")
        if max_jobs is not None and max_jobs < 1:
            raise ValueError("max_jobs must be >= 1")
        self.burst = burst
        self.max_jobs = max_jobs
        self.worker_id = worker_id or make_worker_id()
        self.poll_interval = float(poll_interval or self.queue.poll_interval)
        #: claimed jobs held beyond the running ones; None adapts it to the jobs' durations
        self.prefetch = prefetch
        self.idle_recheck = float(idle_recheck or taskito_settings.IDLE_RECHECK)
        self.idle_poll_max = float(taskito_settings.IDLE_POLL_MAX)
        if pool not in ("thread", "process"):
            raise ValueError(f"pool must be 'thread' or 'process', not {pool!r}")
        #: "thread" runs jobs in threads; "process" gives each thread a child process
        self.pool = pool
        self.drain_timeout = float(taskito_settings.DRAIN_TIMEOUT if drain_timeout is None
                                   else drain_timeout)
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.observer = observer
        #: set by stop() (signal handlers); stop_event is for threads that stop a worker
        self.stopping = False
        self._wake: Callable[[], None] | None = None
        self.stop_event = threading.Event()
        self.processed = 0
        self.claimed = 0
        #: jobs put back to pending because the drain timeout ran out, and threads still busy
        #: then (a thread cannot be stopped; the process should exit without joining them)
        self.abandoned = 0
        self.stuck = 0
        #: names of unknown tasks this worker has logged (once each)
        self.unknown_tasks: set[str] = set()

    def stop(self) -> None:
        """Stop claiming; `run()` returns once the jobs in flight are finished.

        Safe in a signal handler: it only sets a flag and puts a wake-up on a SimpleQueue
        (whose put() is reentrant). Setting a threading.Event there can deadlock when the
        signal lands while the main thread holds that Event's lock."""
        self.stopping = True
        wake = self._wake
        if wake is not None:
            wake()

    def observe(self, outcomes: Sequence[Outcome], busy: int) -> None:
        """Tell the observer (if any); one that raises is logged and the worker goes on."""
        observer = self.observer
        if observer is None:
            return
        try:
            observer(outcomes, busy)
        except Exception:
            logger.exception("worker observer failed worker=%s", self.worker_id)

    @property
    def stop_requested(self) -> bool:
        return self.stopping or self.stop_event.is_set()

    # -- stepping (tests) --------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> int:
        """Claim up to `concurrency` ready jobs, run them one after another in this thread and
        write their outcomes; returns how many ran. `now` lets tests move the clock."""
        jobs = self.engine.claim(worker_id=self.worker_id, limit=self.concurrency,
                                 queues=self.queues, now=now)
        jobs = self.engine.screen(jobs, now, self.unknown_tasks)
        executor = Executor(self.queue, manage_connections=False)
        outcomes = [executor(job, now=now) for job in jobs]
        self.engine.finish(outcomes, now=now)
        self.processed += len(outcomes)
        if self.observer is not None:
            self.observe(outcomes, 0)
        return len(outcomes)

    def run_until_empty(self, now: datetime | None = None, limit: int = 100_000) -> int:
        """Step until nothing is ready; returns how many jobs ran."""
        total = 0
        while total < limit:
            ran = self.run_once(now)
            if not ran:
                break
            total += ran
        return total

    # -- the real loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until `stop()` (or, with burst, until nothing is ready); returns jobs finished."""
        loop = _Loop(self)
        try:
            loop.run()
        finally:
            loop.close()
        return self.processed


class _Loop:
    """State of one `Worker.run()`."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.pool: JobThreads[ClaimedJob] = JobThreads(worker.concurrency, self._execute,
                                                       name="taskito-job")
        self.executor: Executor | ProcessExecutor = (
            ProcessExecutor(worker.queue) if worker.pool == "process" else Executor(worker.queue))
        #: finished outcomes; a ClaimedJob that was not started because the worker is stopping;
        #: None when a LISTEN watcher hears of new jobs
        self.done: SimpleQueue[Outcome | ClaimedJob | None] = SimpleQueue()
        self.in_flight = 0
        self.running: dict[uuid.UUID, ClaimedJob] = {}
        #: perf_counter start of each running attempt, and attempts failed for their timeout
        self.started: dict[uuid.UUID, float] = {}
        self.timed_out: set[uuid.UUID] = set()
        self.last_timeout_check = 0.0
        self.unstarted: list[ClaimedJob] = []
        self.stopping_since: float | None = None
        self.lifeline = Lifeline(worker.engine, worker_id=worker.worker_id,
                                 queues=",".join(worker.queues or []) or "*",
                                 concurrency=worker.concurrency,
                                 heartbeat_interval=worker.heartbeat_interval,
                                 stale_after=worker.stale_after)
        self.unflushed: list[Outcome] = []
        self.watcher = worker.queue.dialect.watcher(worker.poll_interval,
                                                    wake=lambda: self.done.put(None),
                                                    queues=worker.queues)
        worker._wake = lambda: self.done.put(None)
        #: what the database wants run beside the loop (SQLite: WAL checkpoints)
        self.upkeep = worker.queue.dialect.upkeep()
        self.last_check = 0.0
        self.check_now = True
        self.backoff = 0.0
        self.wait = worker.poll_interval
        self.last_activity = time.monotonic()
        self.avg_ms: float | None = None
        #: the event loop for `async def` jobs (thread pool only), started on first use;
        #: async_ids are the claimed jobs it holds (running or waiting for a slot)
        self.aio: AsyncRunner | None = None
        self.async_ids: set[uuid.UUID] = set()
        #: monotonic time async jobs were last claimed: the loop's share counts in claims
        #: only while async jobs come (a claim cannot tell sync and async jobs apart, so an
        #: always-on share would let sync jobs take it and hoard them from other workers)
        self.last_async = -ASYNC_SHARE_FOR

    def run(self) -> None:
        w = self.w
        self.lifeline.start()  # before the first claim, so a rescue never mistakes us for dead
        logger.info("started worker=%s queues=%s concurrency=%d pool=%s async_concurrency=%d",
                    w.worker_id, ",".join(w.queues or []) or "*", w.concurrency, w.pool,
                    w.async_concurrency)
        while True:
            self.collect(block=False)
            self.flush()
            if w.stop_requested or (w.max_jobs is not None and w.claimed >= w.max_jobs):
                if self.drained():
                    return
                self.collect(block=True)
                continue
            self.lifeline.tick()
            self.check_timeouts()
            checked, got = self.maybe_claim()
            if w.burst and checked and got == 0 and self.in_flight == 0 and not self.unflushed:
                return
            if got:
                self.active()
            else:
                self.collect(block=True)

    def check_timeouts(self) -> None:
        """Fail attempts running past their hard timeout (every 50 ms). A thread cannot be
        stopped from outside: the job is failed (and retried per its policy) at once, and its
        thread's late outcome is dropped when it finally returns."""
        clock = time.perf_counter()
        if clock - self.last_timeout_check < 0.05:
            return
        self.last_timeout_check = clock
        for job_id, started in list(self.started.items()):
            job = self.running.get(job_id)
            if job is None or not job.timeout_ms or (clock - started) * 1000 < job.timeout_ms:
                continue
            logger.warning("timeout job=%s task=%s after=%.1fs", job.id, job.task_name,
                           job.timeout_ms / 1000)
            self.timed_out.add(job_id)
            self.running.pop(job_id, None)
            self.started.pop(job_id, None)
            self.unflushed.append(self.executor.timed_out(job, started))
            if self.aio is not None:
                self.aio.cancel(job_id)  # a coroutine, unlike a thread, can be stopped
        if self.aio is not None:
            self.aio.poll_cancels(self.w.engine)

    def drained(self) -> bool:
        """While stopping: True once nothing runs, or when the drain timeout ran out (then the
        jobs still running go back to pending for another worker to take at once)."""
        if self.in_flight == 0 and not self.unflushed and not self.unstarted:
            return True
        self.lifeline.tick()  # keep heartbeating while draining
        now = time.monotonic()
        if self.stopping_since is None:
            self.stopping_since = now
        if self.in_flight and now - self.stopping_since >= self.w.drain_timeout:
            jobs = list(self.running.values())
            try:
                self.w.abandoned = self.w.engine.requeue(jobs)
            except DatabaseError as exc:
                logger.error("drain timeout: could not requeue %d jobs (%s); the lifeline "
                             "will rescue them", len(jobs), exc)
                self.w.abandoned = len(jobs)
            logger.warning("drain timeout after %.0fs: %d running jobs put back to pending",
                           self.w.drain_timeout, len(jobs))
            self.w.stuck = self.in_flight
            self.flush()
            return True
        return False

    def capacity(self) -> int:
        """Jobs to hold at once: the running ones plus a claimed buffer. Unless set, the
        buffer holds about PREFETCH_SECONDS of work at the jobs' recent average duration, so
        short jobs are claimed in large batches and long jobs are not hoarded from other
        workers."""
        w = self.w
        if w.prefetch is not None:
            return w.concurrency + w.prefetch
        if self.avg_ms is None:
            return w.concurrency * 2
        extra = int(w.concurrency * PREFETCH_SECONDS * 1000 / max(self.avg_ms, 0.001))
        return w.concurrency + min(MAX_PREFETCH, extra)

    def async_capacity(self) -> int:
        """Async jobs to hold at once: ASYNC_CONCURRENCY running plus a claimed buffer (0
        when this worker runs no `async def` tasks)."""
        w = self.w
        if not self.async_ids and time.monotonic() - self.last_async > ASYNC_SHARE_FOR:
            return 0
        if w.prefetch is not None:
            return w.async_concurrency + w.prefetch
        return w.async_concurrency + min(MAX_PREFETCH, max(1, w.async_concurrency // 2))

    def maybe_claim(self) -> tuple[bool, int]:
        # Claim when a thread (or loop slot) is idle or its buffer is half empty, then fill
        # both: one claim statement then serves many jobs instead of one per freed slot. A
        # claim cannot choose sync or async jobs, so either kind may take the other's share;
        # the total held stays within both capacities.
        w = self.w
        capacity, async_cap = self.capacity(), self.async_capacity()
        in_async = len(self.async_ids)
        in_sync = self.in_flight - in_async
        free = max(0, capacity - in_sync) + max(0, async_cap - in_async)
        free = min(free, capacity + async_cap - self.in_flight)
        if free <= 0 or not (_wants(in_sync, w.concurrency, capacity)
                             or _wants(in_async, w.async_concurrency, async_cap)):
            return False, 0
        now = time.monotonic()
        if not (self.check_now or now - self.last_check >= w.idle_recheck
                or self._changed()):
            return False, 0
        self.last_check = now
        limit = free if w.max_jobs is None else min(free, w.max_jobs - w.claimed)
        try:
            jobs = w.engine.claim(worker_id=w.worker_id, limit=limit, queues=w.queues)
            # a full claim means more may be ready, even when screening held some back
            self.check_now = len(jobs) == limit
            jobs = w.engine.screen(jobs, warned=w.unknown_tasks)
        except DatabaseError as exc:
            self._db_error("claim", exc)
            return False, 0
        self.backoff = 0.0
        running = self.running
        for job in jobs:
            running[job.id] = job
        coroutines = [job for job in jobs if self._is_async(job)]
        if coroutines:
            ids = {job.id for job in coroutines}
            self.async_ids.update(ids)
            self.pool.put_many([job for job in jobs if job.id not in ids])
            self._runner().submit(coroutines)
        else:
            self.pool.put_many(jobs)
        self.in_flight += len(jobs)
        w.claimed += len(jobs)
        if jobs and w.observer is not None:
            self.observe(())
        return True, len(jobs)

    def _is_async(self, job: ClaimedJob) -> bool:
        if self.w.pool != "thread":
            return False  # a child process runs an async task on a loop of its own
        try:
            spec = registry.resolve(job.task_name)
        except Exception:  # a broken resolver: the executor records it as the job's error
            return False
        if spec is None or not spec.is_async:
            return False
        self.last_async = time.monotonic()
        return True

    def _runner(self) -> AsyncRunner:
        if self.aio is None:
            executor = self.executor
            assert isinstance(executor, Executor)
            self.aio = AsyncRunner(executor, concurrency=self.w.async_concurrency,
                                   report=self.done.put, started=self.started,
                                   stopping=lambda: self.w.stop_requested).start()
        return self.aio

    def _changed(self) -> bool:
        try:
            return self.watcher.changed()
        except DatabaseError as exc:
            self._db_error("watch", exc)
            return False

    def _execute(self, job: ClaimedJob) -> None:
        if self.w.stop_requested:  # claimed, but the worker is stopping: hand it back
            self.done.put(job)
            return
        self.started[job.id] = time.perf_counter()
        try:
            outcome = self.executor(job)
        except BaseException as exc:  # the executor catches task errors; this is a bug guard
            logger.exception("executor crashed job=%s", job.id)
            kind: OutcomeKind = "retry" if job.retry_count < job.max_retries else "dead"
            outcome = Outcome(job, kind, 0.0, error=f"worker error: {exc!r}",
                              retry_at=timezone.now())
        self.done.put(outcome)

    def active(self) -> None:
        self.wait = self.w.poll_interval
        self.last_activity = time.monotonic()

    def idle_wait(self) -> float:
        """The poll interval while busy; after a second of idleness it doubles up to
        IDLE_POLL_MAX, so an idle worker costs almost no CPU."""
        if self.in_flight == 0 and time.monotonic() - self.last_activity > 1.0:
            self.wait = min(self.wait * 2, max(self.w.poll_interval, self.w.idle_poll_max))
        return self.wait

    def collect(self, *, block: bool) -> None:
        """Move finished outcomes from the pool; when blocking, wait one poll interval."""
        done = self.done
        try:
            item = done.get(timeout=self.idle_wait()) if block else done.get_nowait()
        except Empty:
            return
        running, started, async_ids = self.running, self.started, self.async_ids
        finished = 0
        while True:
            if isinstance(item, Outcome):
                job_id = item.job.id
                if job_id in self.timed_out:
                    self.timed_out.discard(job_id)  # its thread is free again
                else:
                    running.pop(job_id, None)
                    started.pop(job_id, None)
                    self.unflushed.append(item)
                    finished += 1
                    if not async_ids or job_id not in async_ids:
                        # the sync prefetch follows sync jobs' durations
                        self.avg_ms = item.wall_ms if self.avg_ms is None else (
                            0.9 * self.avg_ms + 0.1 * item.wall_ms)
                async_ids.discard(job_id)
                self.in_flight -= 1
            elif item is not None:  # a ClaimedJob not started: the worker is stopping
                async_ids.discard(item.id)
                self.unstarted.append(item)
                running.pop(item.id, None)
                self.in_flight -= 1
            try:
                item = done.get_nowait()
            except Empty:
                break
        if finished:
            self.active()

    def flush(self) -> None:
        if self.unstarted:
            try:
                self.w.engine.requeue(self.unstarted)
                self.unstarted = []
            except DatabaseError as exc:
                self._db_error("requeue", exc)
        if not self.unflushed:
            return
        try:
            self.w.engine.finish(self.unflushed)
        except DatabaseError as exc:
            self._db_error("finish", exc)
            return
        self.backoff = 0.0
        self.w.processed += len(self.unflushed)
        if self.w.observer is not None:
            self.observe(self.unflushed)
        self.unflushed = []
        # a slot is free, and the batch may have made jobs ready on this worker's own
        # connection (a retry due now, a next step, a dependent), which wakes none of its
        # watchers: look again at once (also how --burst learns it is done)
        self.check_now = True

    def observe(self, outcomes: Sequence[Outcome]) -> None:
        # busy: attempts running in threads (at most `concurrency`: a thread that finished
        # one may start the next before its outcome is collected) and on the event loop;
        # claimed jobs still waiting in the buffer are not busy
        started = self.started
        on_loop = sum(1 for job_id in self.async_ids if job_id in started)
        self.w.observe(outcomes, min(len(started) - on_loop, self.w.concurrency) + on_loop)

    def _db_error(self, what: str, exc: DatabaseError) -> None:
        low, high = ERROR_BACKOFF
        self.backoff = min(high, max(low, self.backoff * 2))
        logger.warning("database error during %s, retrying in %.2fs: %s", what, self.backoff,
                       exc)
        conn = self.w.queue.dialect.connection
        if conn.in_atomic_block is False:
            conn.close_if_unusable_or_obsolete()
        deadline = time.monotonic() + self.backoff
        while not self.w.stop_requested and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.watcher.close()
        if self.upkeep is not None:
            self.upkeep.close()
        # After a drain timeout the jobs still running were handed back: do not wait for them
        # (their late results are fenced off by the claim token).
        leave = bool(self.w.abandoned or self.w.stuck)
        if isinstance(self.executor, ProcessExecutor):
            if leave:
                for job_id in list(self.executor.running):
                    self.executor.kill(job_id)
            leave = False  # with their children gone, the job threads return at once
        self.pool.shutdown(wait=not leave, cancel=leave)
        if self.aio is not None:
            self.aio.close()
        if isinstance(self.executor, ProcessExecutor):
            self.executor.close()
        self.lifeline.close()
        self.collect(block=False)
        for _ in range(20):
            if not self.unflushed:
                break
            self.flush()
        if self.unflushed:
            logger.error("could not record %d outcomes; their jobs stay running until the "
                         "lifeline requeues them", len(self.unflushed))
        logger.info("stopped worker=%s processed=%d", self.w.worker_id, self.w.processed)
