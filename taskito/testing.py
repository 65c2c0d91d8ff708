"""Testing code that enqueues: `queue.test_mode()`, `run_jobs`, the enqueue assertions (the
pytest fixture `taskito_run` lives in `taskito.pytest_plugin`).

Jobs are real rows in the test database: they run in the calling thread through the same
executor and finish path as a worker (signals, middleware, retries, dead letters), without
sleeping and without rate or concurrency limits.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from django.utils import timezone

from taskito.base import QueueBase
from taskito.engine import Engine, Outcome
from taskito.exceptions import TaskFailedError
from taskito.result import FIELDS, JobResult
from taskito.serialization import dumps, loads
from taskito.states import JobStatus
from taskito.task import Task

if TYPE_CHECKING:
    from taskito.queue import Queue

__all__ = ["TestMode", "assert_enqueued", "assert_not_enqueued", "enqueued_jobs", "run_jobs"]

#: the worker id jobs run here are claimed under
WORKER_ID = "taskito-testing"
#: attempts one run_jobs call makes at most (a task that keeps enqueueing itself)
RUN_LIMIT = 100_000
#: jobs an assertion message lists at most
LISTED = 20


def run_job(queue: QueueBase, job_id: uuid.UUID, now: datetime | None = None, *,
            retry_now: bool = False) -> Outcome | None:
    """Claim job `job_id`, run it in this thread and record its outcome as a worker would.
    With `retry_now`, a retry runs at once instead of at its due time. The last outcome, or
    None when the job was not pending (or still waits for a dependency)."""
    from taskito.runtime.executor import Executor

    engine = Engine(_full(queue))
    executor = Executor(_full(queue), manage_connections=False)
    last: Outcome | None = None
    while True:
        job = engine.claim_one(job_id, worker_id=WORKER_ID, now=now)
        if job is None:
            return last
        last = executor(job, now=now)
        engine.finish([last], now=now)
        if last.kind != "retry" or not retry_now:
            return last


class TestMode:
    """What `queue.test_mode()` returns: while active, every job enqueued through that
    queue (from any thread) runs at once in the enqueueing thread; `with` gives the list of
    the JobResults run."""

    __test__ = False  # not a pytest test class

    def __init__(self, queue: QueueBase, *, propagate_errors: bool = False) -> None:
        self.queue = queue
        self.propagate_errors = propagate_errors
        self.ran: list[JobResult] = []
        self._lock = threading.Lock()
        self._previous: Any = None

    def __enter__(self) -> list[JobResult]:
        self._previous = self.queue.test_mode_state
        self.queue.test_mode_state = self
        return self.ran

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.queue.test_mode_state = self._previous

    def run(self, ids: Sequence[uuid.UUID]) -> list[JobResult]:
        """Run new jobs now (retries at once); their handles. With propagate_errors, the
        exception of a job that ended dead comes out here."""
        handles: list[JobResult] = []
        for job_id in ids:
            outcome = run_job(self.queue, job_id, retry_now=True)
            handle = self.queue.handle(job_id)
            with self._lock:
                self.ran.append(handle)
            handles.append(handle)
            if self.propagate_errors and outcome is not None and outcome.kind == "dead":
                raise outcome.exception or TaskFailedError(outcome.error or "job is dead")
        return handles


def run_jobs(queue: str | QueueBase | None = None, task: Task[Any, Any] | str | None = None,
             max_jobs: int | None = None, now: datetime | None = None) -> list[JobResult]:
    """Run every job that is ready at `now` (default: the current time) in this thread, one
    after another in claim order, until none is ready: retries whose time has come run
    too, so moving `now` forward runs delayed jobs and later retries. `queue` (a queue name,
    or a Queue) and `task` (a Task or a task name) narrow what runs; `max_jobs` caps the
    attempts. Returns each job run once, in the order they first ran."""
    if max_jobs is not None and (isinstance(max_jobs, bool) or not isinstance(max_jobs, int)
                                 or max_jobs < 1):
        raise ValueError(f"max_jobs must be an int >= 1, not {max_jobs!r}")
    source, queue_name, task_name = _target(queue, task)
    engine = Engine(_full(source))
    ran: dict[uuid.UUID, JobResult] = {}
    attempts = 0
    limit = RUN_LIMIT if max_jobs is None else max_jobs
    while attempts < limit:
        at = now or timezone.now()
        engine.expire_due(at)
        rows = source.job_model.objects.using(source.using).runnable(at)
        if queue_name is not None:
            rows = rows.filter(queue=queue_name)
        if task_name is not None:
            rows = rows.filter(task_name=task_name)
        job_id = rows.values_list("id", flat=True).first()
        if job_id is None:
            break
        if run_job(source, job_id, now) is not None:
            attempts += 1
            ran.setdefault(job_id, source.handle(job_id))
    return list(ran.values())


# -- assertions --------------------------------------------------------------------------------
def enqueued_jobs(task: Task[Any, Any] | str | None = None,
                  queue: str | QueueBase | None = None) -> list[JobResult]:
    """Every job (whatever its status) of `task` in `queue` (a name, or a Queue), oldest
    first, with its row loaded."""
    source, queue_name, task_name = _target(queue, task)
    rows = source.job_model.objects.using(source.using).all()
    if task_name is not None:
        rows = rows.filter(task_name=task_name)
    if queue_name is not None:
        rows = rows.filter(queue=queue_name)
    return [source.handle(row["id"], row) for row in
            rows.order_by("created_at", "id").values(*FIELDS, "args", "kwargs")]


def assert_enqueued(task: Task[Any, Any] | str, args: Iterable[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, queue: str | None = None,
                    count: int | None = None) -> list[JobResult]:
    """Assert that jobs of `task` were enqueued (with these arguments, when given; in this
    queue, when given): at least one, or exactly `count`. Returns the matching jobs; the
    AssertionError lists what was enqueued instead."""
    jobs = enqueued_jobs(task, queue)
    matching = [job for job in jobs if _matches(job, args, kwargs)]
    if (count is None and matching) or (count is not None and len(matching) == count):
        return matching
    wanted = "at least once" if count is None else f"{count} time(s)"
    raise AssertionError(f"expected {_call(_name(task), args, kwargs)}{_in(queue)} to be "
                         f"enqueued {wanted}, found {len(matching)}. "
                         + _listing(task, jobs, queue))


def assert_not_enqueued(task: Task[Any, Any] | str, args: Iterable[Any] | None = None,
                        kwargs: Mapping[str, Any] | None = None,
                        queue: str | None = None) -> None:
    """Assert that no job of `task` (with these arguments, when given; in this queue, when
    given) was enqueued; the AssertionError lists the ones that were."""
    matching = [job for job in enqueued_jobs(task, queue) if _matches(job, args, kwargs)]
    if matching:
        raise AssertionError(f"expected no {_call(_name(task), args, kwargs)}{_in(queue)} "
                             f"to be enqueued, found {len(matching)}:\n"
                             + "\n".join(_describe(job) for job in matching[:LISTED]))


# -- helpers -----------------------------------------------------------------------------------
def _full(queue: QueueBase) -> Queue:
    return cast("Queue", queue)  # every QueueBase in use is a Queue


def _target(queue: str | QueueBase | None, task: Task[Any, Any] | str | None
            ) -> tuple[QueueBase, str | None, str | None]:
    """(the Queue whose database to use, a queue name or None, a task name or None)."""
    from taskito.queue import queue as default_queue

    source: QueueBase = default_queue
    task_name: str | None = None
    if isinstance(task, Task):
        source, task_name = task.queue, task.name
    elif isinstance(task, str):
        task_name = task
    elif task is not None:
        raise TypeError(f"task must be a Task or a task name, not {task!r}")
    if isinstance(queue, QueueBase):
        return queue, None, task_name
    if queue is not None and not isinstance(queue, str):
        raise TypeError(f"queue must be a queue name or a Queue, not {queue!r}")
    return source, queue, task_name


def _name(task: Task[Any, Any] | str) -> str:
    return task.name if isinstance(task, Task) else str(task)


def _json(value: Any, what: str) -> Any:
    return json.loads(dumps(value, what))


def _matches(job: JobResult, args: Iterable[Any] | None,
             kwargs: Mapping[str, Any] | None) -> bool:
    row = job._row
    if args is not None and loads(row["args"]) != _json(list(args), "args"):
        return False
    return kwargs is None or loads(row["kwargs"]) == _json(dict(kwargs), "kwargs")


def _call(name: str, args: Iterable[Any] | None, kwargs: Mapping[str, Any] | None) -> str:
    if args is None and kwargs is None:
        return name
    parts = [repr(a) for a in (args or ())]
    parts += [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"


def _in(queue: str | None) -> str:
    return "" if queue is None else f" in queue {queue!r}"


def _describe(job: JobResult) -> str:
    row = job._row
    call = _call(row["task_name"], loads(row["args"]), loads(row["kwargs"]))
    return f"  {call} queue={row['queue']} status={JobStatus(row['status']).label} id={job.id}"


def _listing(task: Task[Any, Any] | str, jobs: list[JobResult], queue: str | None) -> str:
    if jobs:
        shown = "\n".join(_describe(job) for job in jobs[:LISTED])
        more = f"\n  ... and {len(jobs) - LISTED} more" if len(jobs) > LISTED else ""
        return f"Jobs of {_name(task)}{_in(queue)}:\n{shown}{more}"
    others = enqueued_jobs(None, task.queue if isinstance(task, Task) else None)
    if not others:
        return "Nothing was enqueued."
    shown = "\n".join(_describe(job) for job in others[:LISTED])
    more = f"\n  ... and {len(others) - LISTED} more" if len(others) > LISTED else ""
    return f"No job of {_name(task)}{_in(queue)}; enqueued instead:\n{shown}{more}"
