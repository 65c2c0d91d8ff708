"""taskito.task.Task: the decorated function, its name and its enqueue verbs."""

from __future__ import annotations

import pytest

from taskito import Task
from taskito.models import Job
from tests.testapp import tasks


def test_task_name_defaults_to_module_and_qualname():
    assert tasks.add.name == "tests.testapp.tasks.add"


def test_task_name_can_be_given():
    assert tasks.echo.name == "tests.echo"


def test_task_decorator_returns_a_task_that_keeps_the_function_metadata():
    assert isinstance(tasks.add, Task)
    assert tasks.add.__name__ == "add"
    assert tasks.add.__wrapped__ is tasks.add.spec.func
    assert repr(tasks.add) == "<Task tests.testapp.tasks.add>"


@pytest.mark.django_db
def test_task_call_runs_inline_without_a_job():
    assert tasks.add(2, 3) == 5
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_task_call_inline_raises_the_tasks_exception():
    with pytest.raises(tasks.Retryable, match="boom"):
        tasks.always_fails()
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_task_delay_stores_args_and_kwargs_as_json(row):
    job = tasks.echo.delay(1, "two", three=[3])
    stored = row(job)
    assert stored.task_name == "tests.echo"
    assert stored.args == '[1,"two"]'
    assert stored.kwargs == '{"three":[3]}'


@pytest.mark.django_db
def test_task_delay_returns_a_pending_handle():
    job = tasks.add.delay(1, 2)
    assert job.status == "pending"
    assert job.created is True
