"""Periodic tasks (validated forms, enable/disable) and queue switches (pause/resume)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from taskito.admin.schedules import next_fire_times
from taskito.cron import next_fire
from taskito.models import Job, PeriodicTask, QueueState
from tests.admin.conftest import action_names, change_url, changelist_url, messages_of, run_action

pytestmark = pytest.mark.django_db

ADD = reverse("admin:taskito_periodictask_add")
VALID = {"name": "nightly", "task_name": "tests.testapp.tasks.add", "cron": "0 3 * * *",
         "timezone": "UTC", "args": "[1, 2]", "kwargs": "{}", "queue": "", "enabled": "on"}


def make_schedule(**fields) -> PeriodicTask:
    values = {"name": "nightly", "task_name": "tests.testapp.tasks.add", "cron": "0 3 * * *",
              **fields}
    return PeriodicTask.objects.create(**values)


# -- periodic tasks ----------------------------------------------------------------------------

def test_add_a_valid_schedule(superuser_client):
    response = superuser_client.post(ADD, {**VALID, "args": "[1,\n 2]", "cron": " 0  3 * * * "})
    assert response.status_code == 302
    task = PeriodicTask.objects.get()
    assert (task.args, task.kwargs, task.cron, task.queue) == ("[1,2]", "{}", "0 3 * * *", None)
    assert task.enabled
    assert task.next_run_at == next_fire("0 3 * * *", task.created_at)


def test_a_schedule_added_here_is_fired_by_the_scheduler(engine, superuser_client, queue):
    superuser_client.post(ADD, {**VALID, "cron": "*/10 * * * * *"})  # seconds first
    task = PeriodicTask.objects.get()
    assert engine.fire_due_periodic(now=task.next_run_at) == 1
    job = Job.objects.get()
    assert (job.task_name, job.args) == ("tests.testapp.tasks.add", "[1,2]")


@pytest.mark.parametrize(("field", "value", "error"), [
    ("cron", "61 * * * *", "is not valid"),
    ("cron", "every day", "is not valid"),
    ("cron", "* * * * * * *", "is not valid"),
    ("args", "[1, 2", "Not valid JSON"),
    ("args", '{"a": 1}', "Must be a JSON list"),
    ("kwargs", "[1]", "Must be a JSON object"),
    ("timezone", "Mars/Olympus", "is not a known time zone"),
    ("task_name", "no.such.task", "No task named no.such.task is registered"),
])
def test_add_refuses_what_the_scheduler_could_not_run(superuser_client, field, value, error):
    response = superuser_client.post(ADD, {**VALID, field: value})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors[field])
    assert not PeriodicTask.objects.exists()


def test_page_shows_the_next_three_fire_times_and_how_schedules_run(superuser_client):
    task = make_schedule(cron="30 12 * * *", timezone="Europe/Paris")
    html = superuser_client.get(change_url("periodictask", task.pk)).content.decode()
    assert html.count("12:30:00 (Europe/Paris)") == 3
    assert "enqueues each enabled schedule once per due time" in html
    listing = superuser_client.get(changelist_url("periodictask")).content.decode()
    assert "enqueues each enabled schedule once per due time" in listing


def test_next_fire_times_is_pure_and_zone_aware():
    now = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)  # the night Paris moves to summer time
    times = next_fire_times("0 3 * * *", "Europe/Paris", now)
    assert [t.isoformat() for t in times] == ["2025-03-30T03:00:00+02:00",
                                              "2025-03-31T03:00:00+02:00",
                                              "2025-04-01T03:00:00+02:00"]
    assert next_fire_times("not cron", "UTC", now) == []
    assert next_fire_times("* * * * *", "Nowhere/Else", now) == []


def test_edit_a_schedule(superuser_client):
    task = make_schedule()
    response = superuser_client.post(change_url("periodictask", task.pk),
                                     {**VALID, "cron": "*/5 * * * *", "enabled": ""})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.cron, task.enabled) == ("*/5 * * * *", False)


def test_a_changed_cron_moves_the_next_run(superuser_client):
    task = make_schedule(next_run_at=timezone.now() - timedelta(days=3))
    superuser_client.post(change_url("periodictask", task.pk), {**VALID, "cron": "0 4 * * *"})
    task.refresh_from_db()
    assert task.next_run_at > timezone.now()
    assert task.next_run_at.hour == 4


def test_enable_and_disable_actions_report(superuser_client):
    on = make_schedule(name="on", enabled=True)
    off = make_schedule(name="off", enabled=False)
    response = run_action(superuser_client, "periodictask", "disable_tasks", [on.pk, off.pk])
    assert messages_of(response) == ["1 periodic task disabled, 1 skipped (1 already disabled)."]
    response = run_action(superuser_client, "periodictask", "enable_tasks", [on.pk, off.pk])
    assert messages_of(response) == ["2 periodic tasks enabled."]
    assert PeriodicTask.objects.filter(enabled=True).count() == 2
    # switched back on, a schedule starts from its next time: no catch-up of missed ones
    assert all(t.next_run_at > timezone.now() for t in PeriodicTask.objects.all())


def test_view_only_user_cannot_edit_or_switch_schedules(viewer_client):
    task = make_schedule()
    response = viewer_client.get(changelist_url("periodictask"))
    assert action_names(response) == []
    run_action(viewer_client, "periodictask", "disable_tasks", [task.pk])
    viewer_client.post(change_url("periodictask", task.pk), {**VALID, "cron": "* * * * *"})
    assert viewer_client.post(ADD, {**VALID, "name": "other"}).status_code == 403
    task.refresh_from_db()
    assert (task.enabled, task.cron) == (True, "0 3 * * *")


# -- queue switches ----------------------------------------------------------------------------

def test_pause_and_resume_actions_go_through_the_queue(superuser_client, queue):
    queue.pause("a")
    queue.resume("b")
    response = run_action(superuser_client, "queuestate", "pause_queues", ["a", "b"])
    assert messages_of(response) == ["1 queue paused, 1 skipped (1 already paused)."]
    assert sorted(queue.paused_queues()) == ["a", "b"]
    response = run_action(superuser_client, "queuestate", "resume_queues", ["a", "b"])
    assert messages_of(response) == ["2 queues resumed."]
    assert queue.paused_queues() == []


def test_queue_states_are_read_only_and_switching_needs_permission(viewer_client, make_staff,
                                                                   queue):
    queue.pause("a")
    response = viewer_client.get(changelist_url("queuestate"))
    assert response.status_code == 200 and action_names(response) == []
    run_action(viewer_client, "queuestate", "resume_queues", ["a"])
    assert queue.paused_queues() == ["a"]
    switcher = make_staff("switcher", "view_queuestate", "change_queuestate")
    assert action_names(switcher.get(changelist_url("queuestate"))) == ["pause_queues",
                                                                         "resume_queues"]
    assert switcher.get(reverse("admin:taskito_queuestate_add")).status_code == 403
    assert QueueState.objects.count() == 1
