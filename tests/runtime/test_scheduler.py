"""Cron schedules, periodic tasks, result TTL clean-up and dependency graphs, with a clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from taskito import queue as default_queue
from taskito.cron import next_fire, next_fires, validate_cron
from taskito.engine import Engine
from taskito.exceptions import ConfigurationError
from taskito.models import DeadLetter, Job, JobError, PeriodicTask, TaskLog, TaskMetric
from taskito.registry import registry
from taskito.runtime.lifeline import Lifeline
from tests.testapp import tasks

T0 = datetime(2026, 3, 28, 10, 3, 7, tzinfo=UTC)


def test_next_fire_five_fields():
    assert next_fire("*/5 * * * *", T0) == datetime(2026, 3, 28, 10, 5, tzinfo=UTC)


def test_next_fires_gives_one_time_by_default():
    assert next_fires("*/5 * * * *", T0) == [datetime(2026, 3, 28, 10, 5, tzinfo=UTC)]


def test_next_fire_six_fields_has_seconds_first():
    assert next_fires("*/10 * * * * *", T0, count=2) == [
        datetime(2026, 3, 28, 10, 3, 10, tzinfo=UTC),
        datetime(2026, 3, 28, 10, 3, 20, tzinfo=UTC)]


def test_next_fire_reads_the_cron_in_its_time_zone():
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC after the March change
    assert next_fire("0 9 * * *", T0, "Europe/Paris") == datetime(2026, 3, 29, 7, 0,
                                                                   tzinfo=UTC)


@pytest.mark.parametrize("expr", ["", "* * *", "61 * * * *", "not a cron", "* * * * * * *"])
def test_validate_cron_refuses_bad_expressions(expr):
    with pytest.raises(ConfigurationError, match="cron"):
        validate_cron(expr)


def test_validate_cron_refuses_unknown_time_zone():
    with pytest.raises(ConfigurationError, match="time zone"):
        validate_cron("* * * * *", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="time zone"):
        next_fires("* * * * *", T0, "Mars/Olympus")


def test_validate_cron_reads_six_fields_seconds_first():
    # valid only with seconds first: read seconds last, 30 would be the hour
    validate_cron("30 30 23 * * *")
    assert next_fire("30 30 23 * * *", T0) == datetime(2026, 3, 28, 23, 30, 30, tzinfo=UTC)


def test_validate_cron_says_how_to_write_one():
    with pytest.raises(ConfigurationError,
                       match=re.escape("with seconds first, e.g. '*/5 * * * *' or '*/10")):
        validate_cron("not a cron")


def test_periodic_decorator_registers_task_and_schedule():
    spec = next(s for s in registry.periodic() if s.name == "tests.every-five-minutes")
    assert spec.task_name == tasks.periodic_add.name
    assert (spec.cron, spec.args) == ("*/5 * * * *", (2, 3))
    assert tasks.periodic_add(1, 1) == 2


def test_periodic_decorator_refuses_a_bad_cron():
    with pytest.raises(ConfigurationError):
        default_queue.periodic(cron="every minute")


@pytest.mark.django_db
def test_sync_creates_rows_and_keeps_the_enabled_switch(engine, queue):
    specs = [s for s in registry.periodic() if s.name == "tests.every-five-minutes"]
    assert engine.sync_periodic(specs, now=T0) == 1
    row = PeriodicTask.objects.get(name="tests.every-five-minutes")
    assert row.next_run_at == datetime(2026, 3, 28, 10, 5, tzinfo=UTC)
    row.enabled = False
    row.save()
    assert engine.sync_periodic(specs, now=T0) == 0
    assert not PeriodicTask.objects.get(name="tests.every-five-minutes").enabled


@pytest.mark.django_db
def test_due_schedule_fires_once_per_due_time(engine, queue):
    PeriodicTask.objects.create(name="p", task_name=tasks.add.name, cron="*/5 * * * *",
                                args="[1, 2]", next_run_at=T0)
    assert engine.fire_due_periodic(now=T0) == 1
    assert engine.fire_due_periodic(now=T0) == 0  # moved on to 10:05
    job = Job.objects.get(task_name=tasks.add.name)
    assert (job.args, job.status) == ("[1, 2]", 0)
    row = PeriodicTask.objects.get(name="p")
    assert (row.last_run_at, row.next_run_at) == (T0, datetime(2026, 3, 28, 10, 5,
                                                               tzinfo=UTC))


@pytest.mark.django_db
def test_missed_fires_are_not_caught_up(engine, queue):
    PeriodicTask.objects.create(name="p", task_name=tasks.add.name, cron="*/5 * * * *",
                                args="[1, 2]", next_run_at=T0)
    later = T0 + timedelta(hours=3)
    assert engine.fire_due_periodic(now=later) == 1
    assert PeriodicTask.objects.get(name="p").next_run_at > later


@pytest.mark.django_db
def test_disabled_schedule_does_not_fire(engine, queue):
    PeriodicTask.objects.create(name="p", task_name=tasks.add.name, cron="* * * * *",
                                next_run_at=T0, enabled=False)
    assert engine.fire_due_periodic(now=T0 + timedelta(minutes=5)) == 0


@pytest.mark.django_db
def test_fired_job_runs_and_carries_its_schedule(engine, queue, worker):
    PeriodicTask.objects.create(name="p", task_name=tasks.add.name, cron="* * * * *",
                                args="[4, 5]", queue="emails", next_run_at=T0)
    engine.fire_due_periodic(now=timezone.now())
    job = queue.list_jobs(task_name=tasks.add.name)[0]
    assert (job.queue_name, job.metadata["periodic"]) == ("emails", "p")
    worker.run_once()
    assert job.result(timeout=1) == 9


@pytest.mark.django_db
def test_fired_job_takes_the_tasks_own_options(engine):
    PeriodicTask.objects.create(name="p", task_name=tasks.send_email.name, cron="* * * * *",
                                args='["a@example.com"]', next_run_at=T0)
    PeriodicTask.objects.create(name="f", task_name=tasks.fatal.name, cron="* * * * *",
                                next_run_at=T0)
    engine.fire_due_periodic(now=T0)
    mail = Job.objects.get(task_name=tasks.send_email.name)
    assert (mail.queue, mail.priority) == ("emails", 3)  # not the default queue and priority
    assert Job.objects.get(task_name=tasks.fatal.name).max_retries == 5


def _finished(job, at, status=2):
    Job.objects.filter(id=job.id).update(status=status, completed_at=at)


@pytest.mark.django_db
def test_purge_expired_honours_a_jobs_own_result_ttl(engine, queue):
    now = timezone.now()
    old = tasks.add.apply_async((1, 1), result_ttl=10)
    young = tasks.add.apply_async((1, 1), result_ttl=100)
    _finished(old, now - timedelta(seconds=11))
    _finished(young, now - timedelta(seconds=11))
    assert engine.purge_expired(now=now) == 1
    assert not Job.objects.filter(id=old.id).exists()
    assert Job.objects.filter(id=young.id).exists()


@pytest.mark.django_db
def test_purge_expired_uses_the_queue_ttl_for_everything_else(engine, queue):
    now = timezone.now()
    done, dead, pending = tasks.add.delay(1, 1), tasks.add.delay(1, 1), tasks.add.delay(1, 1)
    _finished(done, now - timedelta(seconds=61))
    _finished(dead, now - timedelta(seconds=61), status=4)
    old = now - timedelta(seconds=61)
    JobError.objects.create(job_id=pending.id, attempt=1, error="x", failed_at=old)
    TaskLog.objects.create(job_id=pending.id, task_name="t", message="m", logged_at=old)
    TaskMetric.objects.create(job_id=pending.id, task_name="t", queue="q", succeeded=True,
                              wall_time_ms=1, recorded_at=old)
    DeadLetter.objects.create(id=dead.id, original_job_id=dead.id, queue="q", task_name="t",
                              failed_at=old)
    with override_settings(TASKITO={"RESULT_TTL": 60}):
        assert engine.purge_expired(now=now) == 2
    assert list(Job.objects.values_list("id", flat=True)) == [pending.id]
    assert not (JobError.objects.exists() or TaskLog.objects.exists()
                or TaskMetric.objects.exists() or DeadLetter.objects.exists())


@pytest.mark.django_db
def test_purge_expired_without_a_ttl_keeps_everything(engine, queue):
    job = tasks.add.delay(1, 1)
    _finished(job, timezone.now() - timedelta(days=30))
    assert engine.purge_expired() == 0
    assert Job.objects.filter(id=job.id).exists()


@pytest.mark.django_db
def test_job_dag_follows_links_both_ways(queue):
    a = tasks.add.delay(1, 1)
    b = tasks.add.apply_async((1, 1), depends_on=[a.id])
    c = tasks.add.apply_async((1, 1), depends_on=[b.id])
    dag = queue.job_dag(b.id)
    assert {n["id"] for n in dag["nodes"]} == {str(a.id), str(b.id), str(c.id)}
    assert dag["edges"] == sorted([[str(a.id), str(b.id)], [str(b.id), str(c.id)]])
    assert queue.job_dag("nope") == {"nodes": [], "edges": []}


@pytest.mark.django_db
def test_lifeline_leader_fires_due_schedules(queue):
    PeriodicTask.objects.create(name="p", task_name=tasks.add.name, cron="* * * * *",
                                args="[1, 1]", next_run_at=timezone.now() - timedelta(seconds=1))
    life = Lifeline(Engine(queue), worker_id="w", queues="*", concurrency=1)
    life.tick()
    assert Job.objects.filter(task_name=tasks.add.name).count() == 1
    life.close()


@pytest.mark.django_db
def test_two_lifelines_racing_for_one_periodic_fire_fire_it_once(queue, monkeypatch):
    """The leader stalls between reading a due schedule and firing it, long enough for its
    lease to expire; a second lifeline takes the lease and fires the schedule meanwhile. When
    the first one carries on, its move of the schedule names the time it read, which is gone:
    it fires nothing."""
    from taskito.engine import housekeeping

    now = timezone.now().replace(microsecond=0)
    PeriodicTask.objects.create(name="race", task_name=tasks.add.name, cron="* * * * *",
                                args="[1, 1]", next_run_at=now - timedelta(seconds=1))
    first = Lifeline(Engine(queue), worker_id="first", queues="*", concurrency=1,
                     heartbeat_interval=1, stale_after=30)
    second = Lifeline(Engine(queue), worker_id="second", queues="*", concurrency=1,
                      heartbeat_interval=1, stale_after=30)
    real_next_fire = housekeeping.next_fire
    stalled = []

    def next_fire_with_a_stall(*args, **kwargs):
        if first.leader and not stalled:  # the leader, firing, stalls once: its lease (2 s)
            # runs out meanwhile (sync_periodic, before the lease, reads next_fire too)
            stalled.append(True)
            second.tick(now=now + timedelta(seconds=5))
            assert second.leader
        return real_next_fire(*args, **kwargs)

    monkeypatch.setattr(housekeeping, "next_fire", next_fire_with_a_stall)
    first.tick(now=now)

    assert first.leader and stalled
    (job,) = Job.objects.filter(task_name=tasks.add.name)
    assert json.loads(job.metadata) == {"periodic": "race",
                                        "scheduled_for": (now - timedelta(seconds=1)).isoformat()}
    row = PeriodicTask.objects.get(name="race")
    assert row.next_run_at == next_fire("* * * * *", now + timedelta(seconds=5), "UTC")
    first.close()
    second.close()
