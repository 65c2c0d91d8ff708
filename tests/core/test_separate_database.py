"""Jobs in a database of their own: TASKITO["DATABASE"] and Queue(using=...) put every row
on that alias (the "jobs" database of tests/settings.py) and never on "default"."""

from __future__ import annotations

import pytest
from django.test import override_settings

from taskito.models import DeadLetter, Job, JobError, TaskLog, TaskMetric
from taskito.queue import Queue
from taskito.queue import queue as default_queue
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(databases=["default", "jobs"])

MODELS = (Job, DeadLetter, JobError, TaskLog, TaskMetric)


def counts(alias: str) -> dict[str, int]:
    return {m.__name__: m.objects.using(alias).count() for m in MODELS}


@pytest.fixture
def on_jobs(settings):
    """TASKITO["DATABASE"] = "jobs" for the test."""
    with override_settings(TASKITO={**settings.TASKITO, "DATABASE": "jobs"}):
        yield


def test_setting_puts_enqueue_worker_and_inspection_on_that_alias(on_jobs):
    assert default_queue.using == "jobs"
    done = tasks.reports.delay(2)
    dead = tasks.fatal.delay()
    worker = Worker(default_queue, concurrency=1, worker_id="jobs-db")
    assert worker.run_until_empty() == 2

    assert counts("default") == dict.fromkeys(counts("default"), 0)
    assert counts("jobs") == {"Job": 2, "DeadLetter": 1, "JobError": 1, "TaskLog": 2,
                              "TaskMetric": 2}
    assert done.result(timeout=1) == "done"
    assert default_queue.stats() == {"pending": 0, "running": 0, "completed": 1, "failed": 0,
                                     "dead": 1, "cancelled": 0}
    (letter,) = default_queue.dead_letters()
    assert letter["original_job_id"] == str(dead.id)
    new_id = default_queue.retry_dead(letter["id"])
    assert Job.objects.using("jobs").filter(id=new_id).exists()
    assert not Job.objects.using("default").exists()


def test_queue_using_an_alias_is_independent_of_the_default_queue():
    jobs_queue = Queue(using="jobs")
    job = jobs_queue.enqueue(tasks.add.name, args=(2, 3))
    assert default_queue.get_job(job.id) is None
    assert default_queue.stats()["pending"] == 0
    assert jobs_queue.stats()["pending"] == 1

    Worker(default_queue, worker_id="default-db").run_until_empty()
    assert job.refresh().status == "pending"  # the default queue's worker never saw it
    Worker(jobs_queue, worker_id="jobs-db").run_until_empty()
    assert job.refresh().status == "complete"
    assert jobs_queue.get_job(job.id).result(timeout=1) == 5
    assert counts("default") == dict.fromkeys(counts("default"), 0)


def test_purge_and_cancel_act_on_that_alias_only():
    jobs_queue = Queue(using="jobs")
    on_default, on_jobs = tasks.noop.delay(), jobs_queue.enqueue(tasks.noop.name)
    assert jobs_queue.cancel_job(on_default.id) is False
    assert default_queue.cancel_job(on_jobs.id) is False
    assert jobs_queue.cancel_job(on_jobs.id) is True
    assert (on_default.refresh().status, on_jobs.refresh().status) == ("pending", "cancelled")
