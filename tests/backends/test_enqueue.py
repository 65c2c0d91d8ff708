"""Enqueueing and reading results through the Django Tasks API (ported from Django's
tests/tasks: enqueue, get_result, async variants, validation, argument serialization)."""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from datetime import datetime, timedelta

import django
import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from taskito.backends import TaskitoBackend, TaskitoTask
from taskito.models import Job
from taskito.registry import BreakerSpec
from taskito.states import JobStatus
from tests.backends.framework import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    task_backends,
)
from tests.conftest import UNKNOWN_ID
from tests.testapp import django_tasks as t

pytestmark = pytest.mark.django_db

QUEUES_1 = {"default": {"BACKEND": "taskito.backends.TaskitoBackend",
                        "QUEUES": ["default", "queue_1"]}}


def test_backend_is_configured_from_tasks(backend):
    assert isinstance(backend, TaskitoBackend)
    assert backend.alias == "default"
    assert backend.options == {}
    assert (backend.supports_defer, backend.supports_async_task, backend.supports_get_result,
            backend.supports_priority) == (True, True, True, True)


def test_task_decorator_builds_taskito_tasks():
    for task in (t.noop_task, t.noop_task_async, t.noop_task_from_bare_decorator):
        assert isinstance(task, TaskitoTask)
    assert t.flaky.max_retries == 2
    assert t.flaky.retry_delays == (0,)  # lists become tuples, so tasks stay hashable
    assert hash(t.flaky) == hash(t.flaky.using())


@pytest.mark.parametrize("task", [t.noop_task, t.noop_task_async], ids=["sync", "async"])
def test_enqueue_returns_a_ready_result_and_a_pending_job(task):
    result = task.enqueue(1, two=3)

    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert (result.started_at, result.finished_at, result.last_attempted_at) == (None,) * 3
    assert result.enqueued_at is not None
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert result.task == task
    assert (result.args, result.kwargs) == ([1], {"two": 3})
    assert (result.backend, result.errors, result.worker_ids, result.attempts) == \
        ("default", [], [], 0)
    job = Job.objects.get(id=result.id)
    assert (job.task_name, job.status, job.queue, job.priority) == \
        (task.module_path, JobStatus.PENDING, "default", 0)


def test_aenqueue_returns_a_ready_result():
    result = async_to_sync(t.noop_task.aenqueue)()

    assert result.status == TaskResultStatus.READY
    assert (result.task, result.args, result.kwargs) == (t.noop_task, [], {})
    assert Job.objects.filter(id=result.id).exists()


def test_result_id_is_the_job_id():
    result = t.noop_task.enqueue()
    assert uuid.UUID(result.id) == Job.objects.get().id


def test_get_result_equals_the_enqueued_result():
    result = task_backends["default"].enqueue(t.noop_task, (), {})
    assert t.noop_task.get_result(result.id) == result
    assert task_backends["default"].get_result(result.id) == result


def test_aget_result_equals_the_enqueued_result():
    result = async_to_sync(task_backends["default"].aenqueue)(t.noop_task, (), {})
    assert async_to_sync(t.noop_task.aget_result)(result.id) == result


def test_refresh_keeps_an_unchanged_result_equal():
    result = t.noop_task.enqueue()
    before = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == before
    async_to_sync(result.arefresh)()
    assert dataclasses.asdict(result) == before


@pytest.mark.parametrize("result_id", ["123", 123, str(UNKNOWN_ID), None])
def test_get_missing_result(result_id):
    with pytest.raises(TaskResultDoesNotExist):
        t.noop_task.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(t.noop_task.aget_result)(result_id)


def test_get_result_of_a_job_that_is_not_a_django_task():
    from tests.testapp import tasks

    job = tasks.add.delay(1, 2)
    with pytest.raises(TaskResultDoesNotExist, match="not a Django Task"):
        task_backends["default"].get_result(str(job.id))


def test_get_result_of_another_task_is_a_mismatch():
    result = task_backends["default"].enqueue(t.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        t.noop_task.get_result(result.id)
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        async_to_sync(t.noop_task.aget_result)(result.id)


def test_using_options_reach_the_job_and_come_back():
    run_after = timezone.now() + timedelta(hours=1)
    task = t.noop_task.using(priority=7, queue_name="queue_1", run_after=run_after)

    result = task.enqueue()

    job = Job.objects.get(id=result.id)
    assert (job.priority, job.queue, job.scheduled_at) == (7, "queue_1", run_after)
    assert result.task == task
    assert t.noop_task.get_result(result.id).task.run_after == run_after


def test_run_after_in_the_past_is_due_now():
    result = t.noop_task.using(run_after=timezone.now() - timedelta(days=1)).enqueue()
    job = Job.objects.get(id=result.id)
    assert job.scheduled_at == job.created_at  # not a day ago: due from now, not before


@pytest.mark.parametrize("priority", [-101, 101, 3.1])
def test_invalid_priority(priority):
    with pytest.raises(InvalidTask, match="priority must be a whole number between -100 and 100"):
        t.noop_task.using(priority=priority)


@pytest.mark.parametrize("priority", [-100, 0, 100])
def test_priority_bounds_are_valid(priority):
    assert t.noop_task.using(priority=priority).enqueue().task.priority == priority


def test_naive_run_after_is_refused():
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        t.noop_task.using(run_after=datetime.now())


@override_settings(TASKS=QUEUES_1)
def test_unknown_queue_name_is_refused():
    with pytest.raises(InvalidTask, match="Queue 'queue-2' is not valid for backend"):
        t.noop_task.using(queue_name="queue-2")
    assert t.noop_task.using(queue_name="queue_1").queue_name == "queue_1"


def test_queue_validation_is_bypassed_when_queues_is_empty():
    assert t.noop_task.using(queue_name="anything").enqueue().task.queue_name == "anything"


@override_settings(TASKS=QUEUES_1)
def test_validate_on_enqueue_and_aenqueue():
    task = t.noop_task.using()
    object.__setattr__(task, "queue_name", "unknown_queue")  # as if made under other TASKS
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        task.enqueue()
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        async_to_sync(task.aenqueue)()
    assert not Job.objects.exists()


# Django 6.0's Task has no defaults for these (6.1 and the backport do)
TASK_FIELDS = {"priority": 0, "backend": "default", "queue_name": "default", "run_after": None}


def test_function_must_be_module_level():
    def local() -> None: ...

    for func in (any, local):
        with pytest.raises(InvalidTask, match="Task function must be defined at a module level"):
            task_backends["default"].task_class(func=func, **TASK_FIELDS)


def test_takes_context_needs_a_context_argument():
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        TaskitoTask(func=t.calculate_meaning_of_life.func, takes_context=True, **TASK_FIELDS)


def test_invalid_taskito_option_on_the_task_is_refused():
    with pytest.raises(InvalidTask, match="max_retries must be >= 0"):
        TaskitoTask(func=t.calculate_meaning_of_life.func, max_retries=-1, **TASK_FIELDS)
    with pytest.raises(InvalidTask, match="rate_limit"):
        TaskitoTask(func=t.calculate_meaning_of_life.func, rate_limit="often", **TASK_FIELDS)
    with pytest.raises(InvalidTask, match="circuit_breaker threshold must be an int >= 1"):
        TaskitoTask(func=t.calculate_meaning_of_life.func, circuit_breaker={"threshold": 0},
                    **TASK_FIELDS)


def test_circuit_breaker_on_a_django_task_reaches_its_spec():
    task = TaskitoTask(func=t.calculate_meaning_of_life.func, circuit_breaker={"cooldown": 9},
                       **TASK_FIELDS)
    assert task.circuit_breaker == BreakerSpec(threshold=5, window=60.0, cooldown=9.0)
    assert hash(task)  # still hashable, as Django's tasks are


def not_a_task() -> None:
    """A module-level function that no Task is bound to."""


def test_task_that_does_not_import_by_its_module_path_is_refused():
    task = TaskitoTask(func=not_a_task, **TASK_FIELDS)
    with pytest.raises(InvalidTask, match="does not import as a Task"):
        task.enqueue()
    assert not Job.objects.exists()


def test_enqueue_with_invalid_argument_writes_nothing():
    with pytest.raises(TypeError, match="Unsupported type"):
        t.noop_task.enqueue(datetime.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        async_to_sync(t.noop_task.aenqueue)(when=datetime.now())
    assert not Job.objects.exists()


def test_arguments_are_normalized_to_json():
    result = t.noop_task.enqueue((1, 2), b"bytes", nested={"t": (3, [4])})
    assert result.args == [[1, 2], "bytes"]
    assert result.kwargs == {"nested": {"t": [3, [4]]}}
    assert t.noop_task.get_result(result.id).args == [[1, 2], "bytes"]


@pytest.mark.skipif(django.VERSION < (6, 1),
                    reason="Tasks pickle (by module path) since Django 6.1")
def test_pickled_task_and_result_come_back_equal():
    assert pickle.loads(pickle.dumps(t.flaky)) == t.flaky
    result = t.noop_task.enqueue(1)
    assert pickle.loads(pickle.dumps(result)) == result


def test_enqueue_inside_a_transaction_is_part_of_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        result = t.noop_task.enqueue()
        assert Job.objects.filter(id=result.id).exists()
        raise RuntimeError("roll back")
    assert not Job.objects.exists()
