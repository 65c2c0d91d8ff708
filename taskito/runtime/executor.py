"""Run one claimed job and decide how its attempt ended (complete, retry, dead, cancelled)."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from taskito import middleware, signals
from taskito.conf import taskito_settings
from taskito.context import JobContext, Writer, _current
from taskito.engine import ClaimedJob, Engine, Outcome
from taskito.exceptions import SerializationError, TaskCancelledError, TaskTimeoutError
from taskito.registry import TaskSpec, registry
from taskito.retry import retry_delay
from taskito.serialization import _dumps, loads

if TYPE_CHECKING:
    from taskito.queue import Queue

#: seconds between polls for a cancel request of a running async task
CANCEL_POLL = 0.25

class Executor:
    """Turns a ClaimedJob into an Outcome; never raises."""

    def __init__(self, queue: Queue, *, manage_connections: bool = True) -> None:
        self.queue = queue
        self.engine = Engine(queue)
        self.manage_connections = manage_connections

    def __call__(self, job: ClaimedJob, now: datetime | None = None) -> Outcome:
        """Run the job; `now` (tests) is the clock that retry delays count from."""
        started = time.perf_counter()
        spec = registry.resolve(job.task_name)
        if spec is None:
            return _unregistered(job, started)
        if self.manage_connections:
            close_old_connections()
        if signals.job_started.has_listeners(Executor):
            self._started_signal(job)
        token = _current.set(self.context(job))
        hooks = middleware.safe_chain(spec, job.id)
        try:
            value, exc = self._run(spec, job, hooks) if hooks else self._call_caught(spec, job)
        finally:
            _current.reset(token)
            if self.manage_connections:
                close_old_connections()
        return self.outcome(spec, job, value, exc, started, now)

    async def arun(self, job: ClaimedJob, ctx: JobContext) -> Outcome:
        """Run an `async def` task on the running event loop (the worker's loop thread),
        inside its own asyncio Task so that `ctx` is its `current_job`. Signals and
        middleware hooks are user code that may touch the database: they run in a pool
        thread (their context changes carried back), never on the loop."""
        started = time.perf_counter()
        spec = registry.resolve(job.task_name)
        if spec is None:
            return _unregistered(job, started)
        if signals.job_started.has_listeners(Executor):
            await _off_loop(self._started_signal, job)
        _current.set(ctx)
        hooks = middleware.safe_chain(spec, job.id)
        hook_ctx = self.engine.hook_context(job) if hooks else None
        if hook_ctx is not None:
            await _off_loop(middleware.call, hooks, "before", hook_ctx)
        value, exc = await self._acall_caught(spec, job, ctx)
        if hook_ctx is not None:
            await _off_loop(middleware.call, hooks, "after", hook_ctx, value, exc, reverse=True)
        return self.outcome(spec, job, value, exc, started, None)

    def context(self, job: ClaimedJob, writer: Writer | None = None) -> JobContext:
        """The `current_job` of an attempt; `writer` defers its writes (async tasks)."""
        return JobContext(
            engine=self.engine, id=job.id, task_name=job.task_name, queue_name=job.queue,
            retry_count=job.retry_count, token=job.token, writer=writer,
            soft_timeout=None if job.soft_timeout_ms is None else job.soft_timeout_ms / 1000)

    def _started_signal(self, job: ClaimedJob) -> None:
        signals.send_guarded(signals.job_started, sender=Executor, job_id=job.id,
                             task_name=job.task_name, queue=job.queue, attempt=job.attempts)

    def outcome(self, spec: TaskSpec, job: ClaimedJob, value: Any, exc: BaseException | None,
                started: float, now: datetime | None) -> Outcome:
        """How the attempt ended, from what the task returned or raised (sync and async)."""
        if exc is not None:
            if isinstance(exc, TaskCancelledError) and getattr(exc, "job_id", None) == job.id:
                # from check_cancelled() of this job, or its coroutine cancelled for it
                return Outcome(job, "cancelled", _elapsed(started), error=str(exc))
            return self._failed(spec, job, exc, started, now)
        try:
            result = "null" if value is None else _dumps(value)
            if not result.isascii():
                result.encode()  # a lone surrogate cannot be stored: fail the job, not its batch
        except (TypeError, ValueError) as exc:
            error = SerializationError(f"result of {job.task_name} is not JSON-serializable: {exc}")
            return self._failed(spec, job, error, started, now)
        return Outcome(job, "complete", _elapsed(started), result=result)

    async def _acall_caught(self, spec: TaskSpec, job: ClaimedJob, ctx: JobContext
                            ) -> tuple[Any, BaseException | None]:
        """`_call_caught` for a coroutine; a cancel of this running job (the coroutine was
        cancelled for it) becomes the same TaskCancelledError as from check_cancelled()."""
        try:
            return await spec.func(*_args(job.args), **_kwargs(job.kwargs)), None
        except (Exception, SystemExit) as exc:
            return None, exc
        except asyncio.CancelledError:
            if not ctx.cancel_requested:
                raise  # a timeout or the worker stopping: the runner knows what to do
            cancelled = TaskCancelledError(f"job {job.id} was cancelled while running")
            cancelled.job_id = job.id
            return None, cancelled

    def _call_caught(self, spec: TaskSpec, job: ClaimedJob) -> tuple[Any, BaseException | None]:
        """The task's return value, or the exception it raised (sys.exit() included)."""
        try:
            return self._call(spec, job), None
        except (Exception, SystemExit) as exc:
            return None, exc

    def _run(self, spec: TaskSpec, job: ClaimedJob, hooks: middleware.Chain
             ) -> tuple[Any, BaseException | None]:
        """The task between its middleware's `before` and (in reverse) `after`, in this
        thread and inside the job's context; a hook that raises is logged and changes
        nothing."""
        ctx = self.engine.hook_context(job)
        middleware.call(hooks, "before", ctx)
        value, exc = self._call_caught(spec, job)
        middleware.call(hooks, "after", ctx, value, exc, reverse=True)
        return value, exc

    def failed_outside(self, job: ClaimedJob, exc: BaseException, started: float) -> Outcome:
        """The outcome of an attempt that failed outside the task's own code (its process
        died): a failure that follows the task's retry policy."""
        spec = registry.resolve(job.task_name)
        if spec is None:
            return Outcome(job, "dead", _elapsed(started), error=f"{type(exc).__name__}: {exc}")
        return self._failed(spec, job, exc, started, None)

    def timed_out(self, job: ClaimedJob, started: float) -> Outcome:
        """The outcome of an attempt that ran past its hard timeout (`started` is its
        perf_counter start): a failure that follows the task's retry policy."""
        seconds = (job.timeout_ms or 0) / 1000
        exc = TaskTimeoutError(f"timed out after {seconds:g} s")
        spec = registry.resolve(job.task_name)
        hooks = middleware.safe_chain(spec, job.id)
        if hooks:
            middleware.call(hooks, "on_timeout", self.engine.hook_context(job))
        if spec is None:
            return Outcome(job, "dead", _elapsed(started), error=f"TaskTimeoutError: {exc}")
        return self._failed(spec, job, exc, started, None)

    def _call(self, spec: TaskSpec, job: ClaimedJob) -> Any:
        if spec.is_async:
            ctx = _current.get()
            assert ctx is not None
            return async_to_sync(self._on_own_loop)(spec, job, ctx)
        return spec.func(*_args(job.args), **_kwargs(job.kwargs))

    async def _on_own_loop(self, spec: TaskSpec, job: ClaimedJob, ctx: JobContext) -> Any:
        """An async task run from a thread (`run_once`, `--pool process` children): on a
        loop of its own. Its progress/log writes and a cancel poll go through
        `sync_to_async`, which runs them in the calling thread on its connection."""
        loop = asyncio.get_running_loop()
        writes: list[asyncio.Task[Any]] = []
        ctx.writer = lambda job_id, fn: writes.append(loop.create_task(sync_to_async(fn)()))
        task = asyncio.current_task()
        assert task is not None
        poller = loop.create_task(self._poll_cancel(ctx, task))
        try:
            value, exc = await self._acall_caught(spec, job, ctx)
        finally:
            poller.cancel()
            if writes:
                await asyncio.gather(*writes, return_exceptions=True)
        if exc is not None:
            raise exc
        return value

    async def _poll_cancel(self, ctx: JobContext, task: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(CANCEL_POLL)
            if await sync_to_async(self.engine.is_cancel_requested)(ctx.id):
                ctx.cancel_requested = True
                task.cancel()
                return

    def _failed(self, spec: TaskSpec, job: ClaimedJob, exc: BaseException,
                started: float, now: datetime | None) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc))
        wall = _elapsed(started)
        if spec.should_retry(exc) and job.retry_count < job.max_retries:
            delay = retry_delay(
                job.retry_count + 1,
                backoff=_or(spec.retry_backoff, taskito_settings.DEFAULT_RETRY_BACKOFF),
                max_delay=_or(spec.max_retry_delay, taskito_settings.DEFAULT_MAX_RETRY_DELAY),
                delays=spec.retry_delays)
            return Outcome(job, "retry", wall, error=error, traceback=tb,
                           retry_at=(now or timezone.now()) + timedelta(seconds=delay),
                           exception=exc)
        return Outcome(job, "dead", wall, error=error, traceback=tb, exception=exc)


async def _off_loop(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run user code that may use the database (signal receivers, middleware hooks) in a
    pool thread, with its context changes carried back; close the connection it opened."""
    def call() -> None:
        try:
            fn(*args, **kwargs)
        finally:
            close_old_connections()

    await sync_to_async(call, thread_sensitive=False)()


def _args(text: str) -> Any:
    """The job's positional arguments; no JSON decoder for the common empty list."""
    return [] if text == "[]" else loads(text)


def _kwargs(text: str) -> Any:
    return {} if text == "{}" else loads(text)


def _unregistered(job: ClaimedJob, started: float) -> Outcome:
    return Outcome(job, "dead", _elapsed(started), error=(
        f"TaskNotRegistered: no task named {job.task_name!r} is registered in this "
        "worker (is it defined in an installed app's tasks module?)"))


def _elapsed(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _or(value: float | None, default: Any) -> float:
    return float(default if value is None else value)
