"""The worker's event loop: `async def` tasks run as asyncio Tasks on one loop thread, up to
ASYNC_CONCURRENCY at once, while sync tasks keep the thread pool.

The loop never does the worker's bookkeeping: claims, finishes, timeouts and cancel polls stay
in the worker's main thread, which hands jobs in (`submit`) and gets outcomes back through
its `done` queue. A task's progress and log writes go to one writer thread, in order, and an
outcome is reported only after its job's writes are done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from taskito.context import _current
from taskito.engine import ClaimedJob, Outcome, OutcomeKind
from taskito.runtime.executor import CANCEL_POLL

if TYPE_CHECKING:
    from taskito.engine import Engine
    from taskito.runtime.executor import Executor

logger = logging.getLogger("taskito.worker")

#: a loop that has not run its ticker for this long is blocked by a task (logged)
BLOCKED_AFTER = 0.5
#: seconds between the ticks that prove the loop is responsive
TICK = 0.1


class AsyncRunner:
    """One event loop thread running claimed `async def` jobs."""

    def __init__(self, executor: Executor, *, concurrency: int,
                 report: Callable[[Outcome | ClaimedJob], None],
                 started: dict[uuid.UUID, float], stopping: Callable[[], bool]) -> None:
        self.executor = executor
        self.concurrency = concurrency
        #: puts an outcome (or a job handed back unstarted) on the worker's done queue
        self.report = report
        #: the worker's perf_counter start of each running attempt (its hard timeouts)
        self.started = started
        self.stopping = stopping
        self.loop = asyncio.new_event_loop()
        self.tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.writes = ThreadPoolExecutor(1, thread_name_prefix="taskito-aio-writes")
        self.last_write: dict[uuid.UUID, Future[None]] = {}
        self.closing = False
        self.last_tick = time.monotonic()
        #: (task name, job id, since) of the task blocking the loop, once the watchdog saw it
        self.blocked: tuple[str, uuid.UUID | None, float] | None = None
        self.last_cancel_poll = 0.0
        self._sem: asyncio.Semaphore | None = None
        self._ready = threading.Event()
        self._stop_watch = threading.Event()
        self.thread = threading.Thread(target=self._run, name="taskito-aio", daemon=True)
        self.watchdog = threading.Thread(target=self._watch, name="taskito-aio-watchdog",
                                         daemon=True)

    def start(self) -> AsyncRunner:
        self.thread.start()
        self._ready.wait()
        self.watchdog.start()
        return self

    # -- called from the worker's main thread ----------------------------------------------
    def submit(self, jobs: Sequence[ClaimedJob]) -> None:
        """Start these jobs on the loop (each waits for a free slot there)."""
        self.loop.call_soon_threadsafe(self._spawn, list(jobs))

    def cancel(self, job_id: uuid.UUID, *, requested: bool = False) -> None:
        """Cancel a running coroutine: for a cancel request (`requested`: the attempt ends
        cancelled) or its hard timeout (the worker has already failed the attempt)."""
        if job_id in self.tasks:
            self.loop.call_soon_threadsafe(self._cancel, job_id, requested)

    def poll_cancels(self, engine: Engine) -> None:
        """Every CANCEL_POLL seconds, one query for cancel requests of the running jobs."""
        now = time.monotonic()
        if not self.tasks or now - self.last_cancel_poll < CANCEL_POLL:
            return
        self.last_cancel_poll = now
        try:
            found = engine.cancel_requested_among(list(self.tasks))
        except DatabaseError as exc:
            logger.warning("database error during cancel poll: %s", exc)
            return
        for job_id in found:
            self.cancel(job_id, requested=True)

    def close(self) -> None:
        """Cancel what still runs (the worker has handed those jobs back, or they are
        timed out), stop the loop and its threads."""
        self.closing = True
        self._stop_watch.set()
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._shutdown)
            self.thread.join(timeout=10)
        self.watchdog.join(timeout=2)
        self.writes.submit(connections.close_all)
        self.writes.shutdown(wait=True)

    # -- on the loop thread ----------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._sem = asyncio.Semaphore(self.concurrency)
        self.loop.create_task(self._ticker())
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def _spawn(self, jobs: list[ClaimedJob]) -> None:
        for job in jobs:
            self.tasks[job.id] = self.loop.create_task(self._job(job), name=job.task_name)

    def _cancel(self, job_id: uuid.UUID, requested: bool) -> None:
        task = self.tasks.get(job_id)
        if task is None:
            return
        if requested:
            ctx = task.get_context().get(_current)
            if ctx is None or ctx.cancel_requested:
                return  # not started yet (the next poll sees it), or asked already
            ctx.cancel_requested = True
        task.cancel()

    def _shutdown(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.create_task(self._close_connections())

    async def _close_connections(self) -> None:
        """Close the connections tasks opened through the async ORM (asgiref's one
        thread-sensitive thread), after the cancelled tasks unwound; then stop."""
        await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            await sync_to_async(connections.close_all)()
        self.loop.stop()

    async def _job(self, job: ClaimedJob) -> None:
        assert self._sem is not None
        try:
            async with self._sem:
                if self.stopping():  # claimed, but the worker is stopping: hand it back
                    self.report(job)
                    return
                outcome = await self._attempt(job)
                pending = self.last_write.pop(job.id, None)
                if pending is not None:  # the job's progress and logs land before its outcome
                    # (a late timeout cancel: the outcome is reported all the same)
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wrap_future(pending)
        finally:
            self.tasks.pop(job.id, None)
        if outcome is not None:
            self.report(outcome)

    async def _attempt(self, job: ClaimedJob) -> Outcome | None:
        ctx = self.executor.context(job, writer=self._write)
        self.started[job.id] = time.perf_counter()
        try:
            return await self.executor.arun(job, ctx)
        except asyncio.CancelledError:
            if self.closing:
                return None  # handed back by the drain timeout: nothing to report
            # timed out: the worker has recorded the failure and drops this placeholder
            return Outcome(job, "dead", 0.0, error="TaskTimeoutError: cancelled")
        except BaseException as exc:  # arun catches task errors; this is a bug guard
            logger.exception("async executor crashed job=%s", job.id)
            kind: OutcomeKind = "retry" if job.retry_count < job.max_retries else "dead"
            return Outcome(job, kind, 0.0, error=f"worker error: {exc!r}",
                           retry_at=timezone.now())

    def _write(self, job_id: uuid.UUID, fn: Callable[[], object]) -> None:
        """Queue a database write of a running task (progress, log) to the writer thread."""
        self.last_write[job_id] = self.writes.submit(_guarded_write, fn)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            gap = now - self.last_tick
            self.last_tick = now
            blocked = self.blocked
            if blocked is not None or gap > BLOCKED_AFTER:
                name, job_id, _ = blocked or ("unknown", None, 0.0)
                self.blocked = None
                logger.warning("event loop was blocked for %.2fs task=%s job=%s (await I/O, "
                               "or use sync_to_async for blocking calls)", gap, name, job_id)

    # -- the watchdog thread ---------------------------------------------------------------
    def _watch(self) -> None:
        """Name the task that keeps the loop from ticking, while it does."""
        while not self._stop_watch.wait(TICK):
            since = self.last_tick
            gap = time.monotonic() - since
            if gap <= BLOCKED_AFTER + TICK or self.blocked is not None:
                continue
            task = asyncio.current_task(self.loop)
            job_id = next((jid for jid, t in list(self.tasks.items()) if t is task), None)
            name = task.get_name() if task is not None else "unknown"
            self.blocked = (name, job_id, since)
            logger.warning("event loop blocked for %.2fs task=%s job=%s", gap, name, job_id)


def _guarded_write(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:  # a lost progress or log line must not fail the task
        logger.warning("could not write progress or log of an async task: %s", exc)
        close_old_connections()
