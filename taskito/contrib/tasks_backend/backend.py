"""A backend for Django's Tasks framework: `@django.tasks.task` functions run on taskito workers.

    TASKS = {"default": {"BACKEND": "taskito.backends.TaskitoBackend"}}

A Django Task becomes an ordinary taskito job named after the Task's module path, with the
call's arguments; the job's metadata records the backend alias (and `run_after`), so that
`get_result` can rebuild the Task. A worker finds the function through a registry resolver that
imports the Task by that path, sends `task_started` before each attempt, and `task_finished`
once the attempt's outcome is written. Every state change goes through `Queue`; this module only
enqueues and reads.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import django
from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import import_string

if TYPE_CHECKING or django.VERSION >= (6, 0):
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:  # Django 5.2: the django-tasks backport has the same API under another name
    try:
        from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskError
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json
    except ImportError as exc:
        raise ImproperlyConfigured(
            "taskito.backends.TaskitoBackend needs Django's Tasks framework: Django 6.0 or "
            "later, or on Django 5.2 the django-tasks backport (pip install django-tasks, "
            "and add 'django_tasks' to INSTALLED_APPS)."
        ) from exc

from taskito import queue as default_queue
from taskito import signals as taskito_signals
from taskito.context import _current
from taskito.contrib.tasks_backend.utils import (
    TASK_OPTIONS,
    check_options,
    exception_path,
    parse_options,
    quiet_empty_exc_info,
)
from taskito.exceptions import ConfigurationError
from taskito.ids import as_uuid
from taskito.registry import BreakerSpec, TaskSpec, build_spec, parse_breaker, registry
from taskito.serialization import loads
from taskito.states import TERMINAL, JobStatus

if TYPE_CHECKING:
    from taskito.queue import Queue

logger = logging.getLogger(__name__)

__all__ = ["TASK_OPTIONS", "TaskitoBackend", "TaskitoTask", "exception_path", "parse_options"]

#: job metadata key that holds {"backend": alias, "run_after": iso time}
META_KEY = "django_tasks"
#: worker id reported for earlier attempts (taskito keeps the latest attempt's worker only)
UNKNOWN_WORKER = "unknown"

STATUSES = {
    JobStatus.PENDING: TaskResultStatus.READY,  # new, delayed or waiting to retry
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.COMPLETE: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.DEAD: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}
_COLUMNS = ("id", "task_name", "queue", "priority", "status", "args", "kwargs", "attempts",
            "created_at", "started_at", "completed_at", "worker_id", "metadata", "result")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")

#: task names this process runs as Django tasks (the worker sends task_finished for these)
_django_task_names: set[str] = set()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskitoTask(Task):
    """A Django Task that also carries taskito options. Django 6.1 and the django-tasks
    backport pass extra `@task(...)` keyword arguments to it: `@task(max_retries=5)`."""

    max_retries: int | None = None
    retry_backoff: float | None = None
    retry_delays: tuple[float, ...] | None = None
    max_retry_delay: float | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    expires: float | None = None
    rate_limit: str | None = None
    max_concurrent: int | None = None
    retry_on: tuple[type[BaseException], ...] = ()
    dont_retry_on: tuple[type[BaseException], ...] = ()
    unique: bool = False
    result_ttl: float | None = None
    #: taskito.TaskMiddleware classes, instances or dotted paths (see the README)
    middleware: tuple[Any, ...] = ()
    #: {"threshold", "window", "cooldown"}, kept as a (hashable) BreakerSpec
    circuit_breaker: BreakerSpec | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("retry_delays", "retry_on", "dont_retry_on", "middleware"):  # hashable
            value = getattr(self, name)
            if isinstance(value, list | set | frozenset):
                object.__setattr__(self, name, tuple(value))
        try:
            breaker = parse_breaker(self.circuit_breaker)
        except ConfigurationError as exc:
            raise InvalidTask(f"task option {exc}") from exc
        object.__setattr__(self, "circuit_breaker", breaker)
        Task.__post_init__(self)  # zero-argument super() does not work in slotted dataclasses


def own_options(task: Task) -> dict[str, Any]:
    """The taskito options set on the task itself (none for a plain Django Task)."""
    if not isinstance(task, TaskitoTask):
        return {}
    return {f.name: getattr(task, f.name) for f in dataclasses.fields(TaskitoTask)
            if f.name in TASK_OPTIONS and getattr(task, f.name) != f.default}


class TaskitoBackend(BaseTaskBackend):
    """Runs Django Tasks as taskito jobs on the default queue (`TASKITO["DATABASE"]`)."""

    task_class = TaskitoTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._parsed: dict[str, Any] | None = None
        self._specs: dict[tuple[Any, ...], TaskSpec] = {}

    @property
    def queue(self) -> Queue:
        return default_queue

    @property
    def parsed_options(self) -> dict[str, Any]:
        """OPTIONS, checked once; raises ImproperlyConfigured when they are invalid."""
        if self._parsed is None:
            try:
                self._parsed = parse_options(self.options)
            except ConfigurationError as exc:
                raise ImproperlyConfigured(f"TASKS[{self.alias!r}]: {exc}") from exc
        return self._parsed

    def options_for(self, task: Task) -> dict[str, Any]:
        """taskito options for `task`: its own, over OPTIONS["tasks"][path], over OPTIONS."""
        parsed = self.parsed_options
        merged = {k: v for k, v in parsed.items() if k != "tasks"}
        merged.update(parsed["tasks"].get(task.module_path, {}))
        merged.update(own_options(task))
        return merged

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        try:
            check_options(own_options(task), "task option")
        except ConfigurationError as exc:
            raise InvalidTask(str(exc)) from exc

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Validate, then enqueue a taskito job named after the Task's module path; inside
        `transaction.atomic()` it joins that transaction (and `task_enqueued` waits for the
        commit)."""
        self.validate_task(task)
        if find_task(task.module_path) is None:
            raise InvalidTask(
                f"{task.module_path!r} does not import as a Task: workers import a task by the "
                "module path of its function, so define it with @task at module level under "
                "its function's name")
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        self._register(task)
        meta: dict[str, Any] = {"backend": self.alias}
        if task.run_after is not None:
            meta["run_after"] = task.run_after.isoformat()
        job = self.queue.enqueue(task.module_path, args, kwargs, priority=task.priority,
                                 queue=task.queue_name, eta=task.run_after,
                                 metadata={META_KEY: meta})
        result = self.get_result(str(job.id))
        if job.created:
            sender = type(self)
            transaction.on_commit(lambda: task_enqueued.send(sender, task_result=result),
                                  using=self.queue.using)
        return result

    def _register(self, task: Task) -> None:
        key = (task.module_path, *sorted(own_options(task).items()))
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = task_spec(task, self.options_for(task))
        if registry.find(spec.name) is not spec:
            registry.register(spec)

    def get_result(self, result_id: str) -> TaskResult:
        """The job's state as a TaskResult; TaskResultDoesNotExist for an unknown id or a job
        that is not a Django task."""
        job_id = as_uuid(result_id) if isinstance(result_id, str | uuid.UUID) else None
        row = None if job_id is None else read_row(self.queue, job_id)
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        return to_result(self.queue, row)

    def check(self, **kwargs: Any) -> list[Any]:
        messages: list[Any] = list(super().check(**kwargs))
        if not apps.is_installed("taskito"):
            messages.append(checks.Error(
                f"TASKS[{self.alias!r}] uses taskito, but 'taskito' is not in INSTALLED_APPS",
                hint="Add 'taskito' to INSTALLED_APPS and run migrate.", id="taskito.E101"))
        try:
            self.parsed_options  # noqa: B018
        except ImproperlyConfigured as exc:
            messages.append(checks.Error(str(exc), id="taskito.E102"))
        return messages


# -- building a spec, and finding one in a worker ------------------------------------------
def task_spec(task: Task, options: Mapping[str, Any]) -> TaskSpec:
    """The taskito spec of a Django Task: name = module path, func = an attempt runner."""
    path = task.module_path

    def run(*args: Any, **kwargs: Any) -> Any:
        return run_attempt(args, kwargs)

    run.__module__, run.__qualname__ = task.func.__module__, task.func.__qualname__
    run.__name__ = task.func.__name__
    # queue and priority too, for jobs enqueued by name (a periodic run) rather than by Task
    spec = build_spec(run, name=path, queue=task.queue_name, priority=task.priority,
                      **dict(options))
    _django_task_names.add(path)
    return spec


def resolve(name: str) -> TaskSpec | None:
    """Registry resolver: a job named after a Django Task that this process has not met yet
    (its module may not be a `tasks` module the worker imports)."""
    try:
        task = find_task(name)
        if task is None:
            return None
        backend = _backend(task.backend)
        options = backend.options_for(task) if isinstance(backend, TaskitoBackend) else (
            own_options(task))
        return task_spec(task, options)
    except Exception:
        logger.exception("cannot load Django task task=%s", name)
        return None


def find_task(path: str) -> Task | None:
    """The Django Task at module path `path`, or None."""
    if not _DOTTED.match(path) or (registry.find(path) is not None
                                   and path not in _django_task_names):
        return None
    try:
        obj = import_string(path)
    except ImportError:
        return None
    return obj if isinstance(obj, Task) else None


def discover_tasks() -> list[str]:
    """Module paths of the Django Tasks on a taskito backend that this process can see: those
    it has met, and those defined in the installed apps' modules imported so far (such as
    their `tasks` modules). A worker imports any other one by its path when a job names it."""
    found = set(_django_task_names)
    packages = {app.name for app in apps.get_app_configs()}
    prefixes = tuple(f"{package}." for package in packages)
    for name, module in list(sys.modules.items()):
        if module is None or not (name in packages or name.startswith(prefixes)):
            continue
        for value in list(vars(module).values()):
            if (isinstance(value, Task) and value.func.__module__ == name
                    and isinstance(_backend(value.backend), TaskitoBackend)):
                found.add(value.module_path)
    return sorted(found)


def _backend(alias: str) -> BaseTaskBackend | None:
    try:
        backend: BaseTaskBackend = task_backends[alias]
    except Exception:  # an alias TASKS no longer has
        return None
    return backend


def _sender(alias: str) -> type[BaseTaskBackend]:
    backend = _backend(alias)
    return TaskitoBackend if backend is None else type(backend)


# -- the worker side -----------------------------------------------------------------------
def run_attempt(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One attempt of a Django task inside a worker: send task_started, call the function
    (with a TaskContext when it takes one) and return its JSON-normalized value."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("a Django task job runs inside a taskito worker only")
    row = read_row(ctx.engine.queue, ctx.id)
    if row is None:
        raise RuntimeError(f"job {ctx.id} vanished while it was starting")
    result = to_result(ctx.engine.queue, row)
    task_started.send(sender=_sender(result.backend), task_result=result)
    task = result.task
    if task.takes_context:
        value = task.call(TaskContext(task_result=result), *args, **kwargs)
    else:
        value = task.call(*args, **kwargs)
    return normalize_json(value)


def _on_job_finished(sender: Any, job_id: uuid.UUID, task_name: str, **kwargs: Any) -> None:
    """taskito's job_finished (sent by the worker after the outcome is written) ->
    task_finished with the job's state: SUCCESSFUL, FAILED, or READY for a retry."""
    if task_name not in _django_task_names:
        return
    try:
        row = read_row(default_queue, job_id)
        if row is None:
            return
        result = to_result(default_queue, row)
        task_finished.send_robust(sender=_sender(result.backend), task_result=result)
    except Exception:  # never break the worker loop over a signal
        logger.exception("could not send task_finished job=%s task=%s", job_id, task_name)


# -- rows to TaskResults -------------------------------------------------------------------
def read_row(queue: Queue, job_id: uuid.UUID) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (queue.job_model.objects.using(queue.using).filter(id=job_id)
                                  .values(*_COLUMNS).first())
    return row


def to_result(queue: Queue, row: Mapping[str, Any]) -> TaskResult:
    """A TaskResult from a job row (raises TaskResultDoesNotExist if the job's task is not a
    Django Task)."""
    base = find_task(row["task_name"])
    if base is None:
        raise TaskResultDoesNotExist(f"{row['id']} (task {row['task_name']!r} is not a Django "
                                     f"Task)")
    metadata = loads(row["metadata"])
    meta = metadata.get(META_KEY) if isinstance(metadata, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    alias = str(meta.get("backend") or base.backend)
    run_after = meta.get("run_after")
    task = _copy_task(base, priority=row["priority"], queue_name=row["queue"], backend=alias,
                      run_after=None if run_after is None else datetime.fromisoformat(run_after))
    status = JobStatus(row["status"])
    attempts = int(row["attempts"])
    worker_ids = [UNKNOWN_WORKER] * attempts
    if attempts and row["worker_id"]:
        worker_ids[-1] = row["worker_id"]
    result: TaskResult = TaskResult(
        task=task, id=str(row["id"]), status=STATUSES[status], enqueued_at=row["created_at"],
        started_at=row["started_at"], last_attempted_at=row["started_at"],
        finished_at=row["completed_at"] if status in TERMINAL else None,
        args=loads(row["args"]), kwargs=loads(row["kwargs"]), backend=alias,
        errors=_errors(queue, row["id"], status, attempts), worker_ids=worker_ids)
    if status == JobStatus.COMPLETE:
        object.__setattr__(result, "_return_value", loads(row["result"]))
    return result


def _copy_task(base: Task, **changes: Any) -> Task:
    """`base` with some fields changed, without validating it again (it was validated when it
    was enqueued; TASKS may have changed since)."""
    task = object.__new__(type(base))
    for f in dataclasses.fields(base):
        object.__setattr__(task, f.name, changes.get(f.name, getattr(base, f.name)))
    return task


def _errors(queue: Queue, job_id: uuid.UUID, status: JobStatus, attempts: int
            ) -> list[TaskError]:
    if attempts == 0 or (status == JobStatus.COMPLETE and attempts == 1):
        return []  # an error row is written for a failed attempt only
    rows = (queue.error_model.objects.using(queue.using).filter(job_id=job_id)
            .order_by("attempt", "id").values_list("error", "traceback"))
    return [TaskError(exception_class_path=exception_path(error, tb), traceback=tb or error)
            for error, tb in rows]


def _install() -> None:
    registry.add_resolver(resolve)
    taskito_signals.job_finished.connect(_on_job_finished,
                                         dispatch_uid="taskito.backends.task_finished")
    if django.VERSION < (6, 0):  # Django 6's own receiver passes exc_info only when set
        quiet_empty_exc_info(logging.getLogger("django_tasks"))


_install()
