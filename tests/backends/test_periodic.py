"""A periodic run of a Django `@task`, scheduled in the admin by its module path."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from taskito.models import Job, PeriodicTask
from taskito.registry import registry
from tests.backends.framework import TaskResultStatus
from tests.testapp import django_tasks as t

pytestmark = pytest.mark.django_db

ADD = reverse("admin:taskito_periodictask_add")


def form(task_name: str) -> dict[str, str]:
    return {"name": "nightly-report", "task_name": task_name, "cron": "0 3 * * *",
            "timezone": "UTC", "args": '["sales"]', "kwargs": "{}", "queue": "",
            "enabled": "on"}


def test_admin_schedules_a_django_task_by_its_module_path(admin_client):
    assert registry.find(t.report.module_path) is None  # never met in this process

    response = admin_client.post(ADD, form(t.report.module_path))

    assert response.status_code == 302, response.content.decode()[:2000]
    row = PeriodicTask.objects.get()
    assert (row.task_name, row.args, row.enabled) == (t.report.module_path, '["sales"]', True)


def test_admin_still_refuses_a_path_that_is_no_task(admin_client):
    response = admin_client.post(ADD, form("tests.testapp.django_tasks.Boom"))
    assert response.status_code == 200
    assert "No task named tests.testapp.django_tasks.Boom" in response.content.decode()
    assert not PeriodicTask.objects.exists()


def test_admin_suggests_django_tasks_it_can_find(admin_client):
    html = admin_client.get(ADD).content.decode()
    assert f'<option value="{t.report.module_path}">' in html


def test_a_scheduled_django_task_runs_on_its_own_queue_and_priority(admin_client, queue, engine,
                                                                      worker):
    admin_client.post(ADD, form(t.report.module_path))
    PeriodicTask.objects.update(next_run_at=timezone.now())  # due now

    assert engine.fire_due_periodic() == 1

    job = Job.objects.get()
    assert (job.queue, job.priority) == ("reports", 7)  # the Task's, not the defaults
    assert worker.run_once() == 1
    result = t.report.get_result(str(job.id))
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL,
                                                    "report sales")
    assert result.task.queue_name == "reports"
    assert queue.get_job(job.id).metadata["periodic"] == "nightly-report"
