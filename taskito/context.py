"""`current_job`: what a running task can ask and tell about its own job."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskito.exceptions import SoftTimeoutError, TaskCancelledError
from taskito.serialization import UNSET, dumps

if TYPE_CHECKING:
    from taskito.engine import Engine

logger = logging.getLogger("taskito.task")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: hands a database write to run off the event loop, in order (async tasks)
Writer = Callable[[uuid.UUID, Callable[[], object]], None]


@dataclass
class JobContext:
    """The running attempt: set by the worker around each task call."""

    engine: Engine
    id: uuid.UUID
    task_name: str
    queue_name: str
    retry_count: int
    token: str
    soft_timeout: float | None = None
    started: float = field(default_factory=time.monotonic)
    #: set for `async def` tasks on the worker's event loop: progress and log writes are
    #: queued to a writer thread instead of blocking the loop
    writer: Writer | None = None
    #: set by the worker (async tasks) when someone asked to cancel this running job
    cancel_requested: bool = False


_current: ContextVar[JobContext | None] = ContextVar("taskito_current_job", default=None)


class CurrentJob:
    """Proxy over the running job. Outside a worker (a task called inline) the properties are
    None, progress and checks do nothing, and `log` writes to the `taskito.task` logger only."""

    @property
    def _ctx(self) -> JobContext | None:
        return _current.get()

    @property
    def id(self) -> uuid.UUID | None:
        ctx = self._ctx
        return ctx.id if ctx else None

    @property
    def task_name(self) -> str | None:
        ctx = self._ctx
        return ctx.task_name if ctx else None

    @property
    def queue_name(self) -> str | None:
        ctx = self._ctx
        return ctx.queue_name if ctx else None

    @property
    def retry_count(self) -> int:
        ctx = self._ctx
        return ctx.retry_count if ctx else 0

    @property
    def in_job(self) -> bool:
        return self._ctx is not None

    def update_progress(self, progress: int, partial: Any = UNSET) -> None:
        """Record progress 0..100 on the job row (visible to result handles, REST and SSE),
        and with `partial=` a JSON value: the task's result so far, which progress streams
        opened with `?partial=1` carry (nothing else reads it)."""
        if isinstance(progress, bool) or not isinstance(progress, int | float):
            raise TypeError(f"progress must be a number from 0 to 100, not {progress!r}")
        if not 0 <= progress <= 100:
            raise ValueError(f"progress must be from 0 to 100, not {progress!r}")
        ctx = self._ctx
        if ctx is not None and ctx.writer is not None:
            if partial is not UNSET:
                dumps(partial, "partial result")  # a bad value raises here, in the task
            engine, job_id, token = ctx.engine, ctx.id, ctx.token
            ctx.writer(job_id, lambda: engine.set_progress(job_id, token, int(progress),
                                                           partial))
        elif ctx is not None:
            ctx.engine.set_progress(ctx.id, ctx.token, int(progress), partial)
        elif partial is not UNSET:
            dumps(partial, "partial result")  # called inline: the same error as in a worker

    def log(self, message: str, level: str = "info", extra: dict[str, Any] | None = None) -> None:
        """Store a log line for this job (TaskLog) and pass it to the `taskito.task` logger."""
        level = level.lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        ctx = self._ctx
        logger.log(logging.getLevelNamesMapping()[level.upper()], "%s job=%s",
                   message, ctx.id if ctx else None)
        if ctx is not None and ctx.writer is not None:
            if extra is not None:
                dumps(extra, "log extra")
            engine, job_id, task_name = ctx.engine, ctx.id, ctx.task_name
            ctx.writer(job_id, lambda: engine.add_log(job_id, task_name, level, str(message),
                                                      extra))
        elif ctx is not None:
            ctx.engine.add_log(ctx.id, ctx.task_name, level, str(message), extra)

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError if someone asked to cancel this running job."""
        ctx = self._ctx
        if ctx is None:
            return
        if ctx.writer is not None:  # async task: the worker polls and sets the flag
            requested = ctx.cancel_requested
        else:
            requested = ctx.engine.is_cancel_requested(ctx.id)
        if requested:
            exc = TaskCancelledError(f"job {ctx.id} was cancelled while running")
            exc.job_id = ctx.id  # tells the worker it is this job's own cancellation
            raise exc

    def check_timeout(self) -> None:
        """Raise SoftTimeoutError once the job has run longer than its soft_timeout."""
        ctx = self._ctx
        if ctx is None or ctx.soft_timeout is None:
            return
        elapsed = time.monotonic() - ctx.started
        if elapsed > ctx.soft_timeout:
            raise SoftTimeoutError(
                f"job {ctx.id} ran {elapsed:.1f} s, past its soft timeout of {ctx.soft_timeout} s"
            )


current_job = CurrentJob()
