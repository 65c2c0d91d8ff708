"""`@django.tasks.task` functions for tests/backends (not a `tasks` module: a worker process
finds them through the backend's resolver, as it would a project's tasks in any module)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django

from taskito import current_job
from taskito.contrib.tasks_backend.utils import TASK_OPTIONS

if django.VERSION >= (6, 0):
    from django.tasks import TaskContext
    from django.tasks import task as framework_task
    from django.tasks.signals import task_finished, task_started
else:  # Django 5.2 with the django-tasks backport
    from django_tasks import TaskContext
    from django_tasks import task as framework_task
    from django_tasks.signals import task_finished, task_started


def task(function: Callable[..., Any] | None = None, /, **kwargs: Any) -> Any:
    """The framework's `@task`. Django 6.0's passes no extra options to the backend's task
    class (6.1 and the backport do): there, set taskito's options on the Task afterwards,
    so these tasks are the same on every line."""
    if django.VERSION[:2] != (6, 0):
        return framework_task(function, **kwargs) if function else framework_task(**kwargs)
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in TASK_OPTIONS}

    def decorate(func: Callable[..., Any]) -> Any:
        made = framework_task(**kwargs)(func)
        return dataclasses.replace(made, **own) if own else made

    return decorate(function) if function else decorate


class Boom(Exception):
    pass


@task()
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task
def noop_task_from_bare_decorator(*args: Any, **kwargs: Any) -> None:
    return None


@task()
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
async def async_add(a: int, b: int) -> int:
    return a + b


@task()
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": args, "kwargs": kwargs}  # a tuple: the backend normalizes it to a list


@task(max_retries=0)
def failing_task_value_error() -> None:
    raise ValueError("This Task failed due to ValueError")


@task(max_retries=0)
def failing_task_system_exit() -> None:
    raise SystemExit("This Task failed due to SystemExit")


@task(max_retries=0)
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task(max_retries=0)
def complex_return_value() -> object:
    return {"value": object()}


@task(takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
def check_context(context: TaskContext, attempt: int) -> None:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task(takes_context=True)
def running_state(context: TaskContext) -> dict[str, Any]:
    result = context.task_result
    return {"status": str(result.status), "worker_ids": result.worker_ids,
            "job_id": str(current_job.id)}


@task(takes_context=True, max_retries=2, retry_delays=[0])
def flaky(context: TaskContext, fail_times: int) -> int:
    if context.attempt <= fail_times:
        raise Boom(f"attempt {context.attempt}")
    return context.attempt


@task(max_retries=1, retry_delays=[0])
def always_fails(message: str = "boom") -> None:
    raise Boom(message)


@task(max_retries=5, retry_delays=[0], dont_retry_on=[ValueError])
def not_worth_retrying() -> None:
    raise ValueError("no point")


@task()
def fails_plainly() -> None:
    raise Boom("plain")


@task(max_retries=0)
def cancellable() -> str:
    current_job.check_cancelled()
    return "not cancelled"


@task(queue_name="reports", priority=7)
def report(kind: str) -> str:
    """Run by a periodic schedule in tests/backends/test_periodic.py."""
    return f"report {kind}"


@task(max_retries=1, retry_delays=[0], takes_context=True)
def record_signals(context: TaskContext, path: str) -> int:
    """Fails its first attempt; the receivers below log every signal to `path`."""
    if context.attempt == 1:
        raise Boom("first attempt")
    return context.attempt


def _record(name: str, task_result: Any) -> None:
    if task_result.task.func is not record_signals.func:
        return
    line = {"signal": name, "id": task_result.id, "status": str(task_result.status),
            "attempts": task_result.attempts, "errors": len(task_result.errors)}
    with Path(task_result.args[0]).open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def _on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _record("started", task_result)


def _on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _record("finished", task_result)


task_started.connect(_on_started, dispatch_uid="tests.record_signals.started")
task_finished.connect(_on_finished, dispatch_uid="tests.record_signals.finished")
