"""`JobResult`: a handle on one job, refreshed from the database on demand."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from taskito.exceptions import (
    JobNotFound,
    MaxRetriesExceededError,
    TaskCancelledError,
    TaskFailedError,
)
from taskito.serialization import loads
from taskito.states import TERMINAL, JobStatus
from taskito.twins import async_twin


class JobSource(Protocol):
    """What a JobResult asks of its queue."""

    @property
    def poll_interval(self) -> float: ...
    @property
    def dialect(self) -> Any: ...
    def fetch_job_row(self, job_id: Any) -> dict[str, Any] | None: ...
    def job_progress(self, job_ids: Any, partial: bool = False
                     ) -> dict[uuid.UUID, tuple[Any, ...]]: ...
    def job_errors(self, job_id: Any) -> list[dict[str, Any]]: ...
    def task_logs(self, job_id: Any) -> list[dict[str, Any]]: ...
    def job_dependencies(self, job_id: Any) -> list[uuid.UUID]: ...
    def job_dependents(self, job_id: Any) -> list[uuid.UUID]: ...
    def cancel_job(self, job_id: Any) -> bool: ...

#: Job columns a handle carries; presenters and refresh() use the same list.
_NOTHING = object()  # a stream poll with no new partial result
_STREAM_END = object()  # the job has ended

FIELDS = (
    "id", "queue", "task_name", "status", "priority", "progress", "retry_count", "max_retries",
    "attempts", "created_at", "scheduled_at", "started_at", "completed_at", "expires_at",
    "error", "timeout_ms", "unique_key", "metadata", "result",
)


class JobResult:
    """What enqueue returns: the job's id plus its row as of the last `refresh()`."""

    def __init__(self, queue: JobSource, job_id: uuid.UUID, row: dict[str, Any] | None = None,
                 *, created: bool = True) -> None:
        self.queue = queue
        self.id = job_id
        #: False when a unique_key enqueue returned an already active job
        self.created = created
        self._row: dict[str, Any] = row or {}

    def __repr__(self) -> str:
        return f"<JobResult {self.id} {self._row.get('task_name', '')} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- the row ---------------------------------------------------------------------------
    def _get(self, name: str) -> Any:
        if name not in self._row:
            self.refresh()
        return self._row.get(name)

    @property
    def status(self) -> str:
        code = self._get("status")
        return JobStatus(code).label if code is not None else "unknown"

    @property
    def task_name(self) -> str:
        return str(self._get("task_name"))

    @property
    def queue_name(self) -> str:
        return str(self._get("queue"))

    @property
    def progress(self) -> int:
        return int(self._get("progress") or 0)

    @property
    def error(self) -> str | None:
        value = self._get("error")
        return None if value is None else str(value)

    @property
    def retry_count(self) -> int:
        return int(self._get("retry_count") or 0)

    @property
    def metadata(self) -> Any:
        return loads(self._get("metadata"))

    @property
    def created_at(self) -> datetime | None:
        value: datetime | None = self._get("created_at")
        return value

    def refresh(self) -> JobResult:
        """Re-read the job row; raises JobNotFound if the job was purged."""
        row = self.queue.fetch_job_row(self.id)
        if row is None:
            raise JobNotFound(f"job {self.id} does not exist (purged?)")
        self._row = row
        return self

    # -- waiting for the outcome -----------------------------------------------------------
    def result(self, timeout: float = 30, poll_interval: float | None = None) -> Any:
        """Block until the job finishes and return its result, or raise what ended it."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        deadline = time.monotonic() + timeout
        # The watcher starts listening before the first read, so a finish in between is seen.
        watcher = self.queue.dialect.job_watcher(self.id,
                                                 poll_interval or self.queue.poll_interval)
        try:
            while True:
                self.refresh()
                if self._row["status"] in TERMINAL:
                    return self._outcome()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {self.id} is still {self.status} after {timeout} s")
                watcher.wait(remaining)
        finally:
            watcher.close()

    async def aresult(self, timeout: float = 30, poll_interval: float | None = None) -> Any:
        """`result()` for async code; waits in a worker thread, not on the event loop."""
        return await sync_to_async(self._result_then_close, thread_sensitive=False)(
            timeout, poll_interval)

    def stream(self, interval: float = 0.1, timeout: float | None = None) -> Iterator[Any]:
        """Yield the task's partial results (`current_job.update_progress(..., partial=)`)
        as they change, read every `interval` seconds, until the job ends; then return
        (call `result()` for its outcome). A value replaced within one interval is skipped.
        TimeoutError after `timeout` seconds if given."""
        poll = self._stream_poll(interval, timeout)
        while True:
            item = poll()
            if item is _STREAM_END:
                return
            if item is not _NOTHING:
                yield item
            time.sleep(interval)

    async def astream(self, interval: float = 0.1, timeout: float | None = None
                      ) -> AsyncIterator[Any]:
        """`stream()` for async code: `async for partial in job.astream(): ...`; the reads
        run in a pool thread and the waits on the event loop."""
        poll = sync_to_async(self._stream_poll(interval, timeout, close=True),
                             thread_sensitive=False)
        while True:
            item = await poll()
            if item is _STREAM_END:
                return
            if item is not _NOTHING:
                yield item
            await asyncio.sleep(interval)

    def _stream_poll(self, interval: float, timeout: float | None, close: bool = False
                     ) -> Callable[[], Any]:
        """One read per call: a new partial result, _NOTHING, or _STREAM_END."""
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValueError(f"interval must be a number of seconds > 0, not {interval!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: list[str | None] = [None]

        def poll() -> Any:
            try:
                state = self.queue.job_progress([self.id], partial=True).get(self.id)
            finally:
                if close:
                    close_old_connections()
            if state is None:
                raise JobNotFound(f"job {self.id} does not exist (purged?)")
            status, _, partial = state
            ended = status in TERMINAL
            if partial is not None and partial != last[0]:
                last[0] = partial
                return loads(partial)  # the last one is given even when the job has ended
            if ended:
                return _STREAM_END
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} is still {JobStatus(status).label} after "
                                   f"{timeout} s")
            return _NOTHING

        return poll

    def _result_then_close(self, timeout: float, poll_interval: float | None) -> Any:
        # Runs on a pool thread outside any request: close the connection it opened.
        try:
            return self.result(timeout, poll_interval)
        finally:
            close_old_connections()

    def _outcome(self) -> Any:
        status = JobStatus(self._row["status"])
        error = self._row.get("error")
        if status == JobStatus.COMPLETE:
            return loads(self._row.get("result"))
        if status == JobStatus.DEAD:
            raise MaxRetriesExceededError(f"job {self.id} is dead: {error}")
        if status == JobStatus.CANCELLED:
            raise TaskCancelledError(f"job {self.id} was cancelled" + (f": {error}" if error
                                                                         else ""))
        raise TaskFailedError(f"job {self.id} failed: {error}")

    # -- related rows and actions ----------------------------------------------------------
    def _errors(self) -> list[dict[str, Any]]:
        return self.queue.job_errors(self.id)

    def _logs(self) -> list[dict[str, Any]]:
        return self.queue.task_logs(self.id)

    def _dependencies(self) -> list[uuid.UUID]:
        return self.queue.job_dependencies(self.id)

    def _dependents(self) -> list[uuid.UUID]:
        return self.queue.job_dependents(self.id)

    errors = property(_errors, doc="The job's errors, one per failed attempt.")
    logs = property(_logs, doc="What the task logged through `current_job.log()`.")
    dependencies = property(_dependencies, doc="Ids of the jobs this job waits for.")
    dependents = property(_dependents, doc="Ids of the jobs that wait for this one.")

    def cancel(self) -> bool:
        """Cancel if pending; otherwise False (see `Queue.cancel_running_job`)."""
        return self.queue.cancel_job(self.id)

    def to_dict(self) -> dict[str, Any]:
        """The job as the REST API shows it (read from the database on first use)."""
        from taskito.presenters import job_dict

        if "status" not in self._row:
            self.refresh()
        return job_dict(self._row)

    # -- async twins: in async code, `await job.arefresh()` before reading `status` & co ---
    arefresh = async_twin(refresh)
    ato_dict = async_twin(to_dict)
    acancel = async_twin(cancel)
    aerrors = async_twin(_errors, "aerrors")
    alogs = async_twin(_logs, "alogs")
    adependencies = async_twin(_dependencies, "adependencies")
    adependents = async_twin(_dependents, "adependents")
