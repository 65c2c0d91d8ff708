"""Safe deploys: a job whose task this worker does not know waits (UNKNOWN_TASK_GRACE, counted
from its creation) for a worker that knows it, spending no retry; then it is dead-lettered."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from taskito.exceptions import ConfigurationError
from taskito.models import DeadLetter, Job, JobError
from taskito.registry import registry
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

NEW_TASK = "tests.deployed_later"


def _unknown_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "taskito.job" and r.getMessage().startswith("unknown task=")]


@pytest.fixture
def row():
    """The Job row of a handle, read fresh."""
    return lambda job: Job.objects.get(id=job.id)


@pytest.fixture
def late_task(queue) -> Iterator[None]:
    """Registers NEW_TASK when the test asks (the deploy reaching this worker)."""
    yield None
    registry.unregister(NEW_TASK)


def test_unknown_task_job_is_deferred_without_spending_a_retry(queue, worker, row):
    job = queue.enqueue(NEW_TASK, max_retries=2)
    now = timezone.now() + timedelta(seconds=5)

    assert worker.run_once(now=now) == 0

    stored = row(job)
    assert (stored.status, stored.attempts, stored.retry_count) == (0, 0, 0)
    assert stored.worker_id is None and stored.claim_token is None
    assert stored.scheduled_at == now + timedelta(seconds=2)
    assert not JobError.objects.filter(job_id=job.id).exists()


def test_unknown_task_is_logged_once_per_task_name_with_a_hint(queue, worker, caplog):
    queue.enqueue(NEW_TASK)
    queue.enqueue(NEW_TASK)
    queue.enqueue("tests.another_new_task")

    with caplog.at_level(logging.WARNING, logger="taskito"):
        worker.run_once()
        worker.run_once(now=timezone.now() + timedelta(seconds=3))  # claimed again

    lines = _unknown_lines(caplog)
    assert len(lines) == 2, lines
    assert any(f"task={NEW_TASK} " in line for line in lines)
    assert all("UNKNOWN_TASK_GRACE" in line and "restart" in line for line in lines)
    # another worker process logs it once too
    with caplog.at_level(logging.WARNING, logger="taskito"):
        Worker(queue, worker_id="second").run_once(now=timezone.now() + timedelta(seconds=6))
    assert len(_unknown_lines(caplog)) == 4


def test_unknown_task_job_runs_once_the_deploy_reaches_the_worker(queue, worker, row,
                                                                  late_task):
    job = queue.enqueue(NEW_TASK, args=(2, 3))
    worker.run_once()
    assert row(job).status == 0

    queue.task(name=NEW_TASK)(lambda a, b: a * b)
    assert worker.run_once(now=timezone.now() + timedelta(seconds=3)) == 1

    stored = row(job)
    assert (stored.status, stored.attempts, stored.retry_count) == (2, 1, 0)
    assert job.result(timeout=1) == 6


def test_unknown_task_job_is_dead_lettered_after_the_grace(queue, worker, row, caplog):
    job = queue.enqueue(NEW_TASK, max_retries=3)
    created = row(job).created_at
    worker.run_once(now=created + timedelta(seconds=599))
    assert row(job).status == 0

    with caplog.at_level(logging.ERROR, logger="taskito.job"):
        worker.run_once(now=created + timedelta(seconds=600))

    job.refresh()
    assert job.status == "dead"
    assert f"no task named {NEW_TASK!r}" in job.error and "UNKNOWN_TASK_GRACE (600 s)" in job.error
    dead = DeadLetter.objects.get(original_job_id=job.id)
    assert any(f"job={job.id}" in r.getMessage() and f"dead_letter={dead.id}" in r.getMessage()
               for r in caplog.records)


def test_deferral_never_passes_the_grace_deadline(queue, worker, row):
    job = queue.enqueue(NEW_TASK)
    created = row(job).created_at
    worker.run_once(now=created + timedelta(seconds=599.5))
    assert row(job).scheduled_at == created + timedelta(seconds=600)


@override_settings(TASKITO={"UNKNOWN_TASK_GRACE": 0})
def test_zero_grace_dead_letters_at_once(queue, worker):
    job = queue.enqueue(NEW_TASK)
    worker.run_once()
    assert job.refresh().status == "dead"


def test_unknown_task_jobs_do_not_hold_back_known_ones(queue, worker):
    queue.enqueue(NEW_TASK)
    ok = tasks.add.delay(1, 1)
    assert worker.run_once() == 1
    assert ok.refresh().status == "complete"
    assert Job.objects.filter(task_name=NEW_TASK, status=0).count() == 1


@pytest.mark.parametrize("value", [-1, "600", None])
def test_grace_setting_is_validated(value):
    from taskito.conf import taskito_settings

    with override_settings(TASKITO={"UNKNOWN_TASK_GRACE": value}), \
            pytest.raises(ConfigurationError, match="UNKNOWN_TASK_GRACE"):
        _ = taskito_settings.UNKNOWN_TASK_GRACE


def test_a_resolver_that_raises_does_not_stop_the_worker(queue):
    def broken(name: str):
        if name == "tests.broken_resolver":
            raise RuntimeError("resolver bug")
        return None

    registry.add_resolver(broken)
    try:
        job = queue.enqueue("tests.broken_resolver", max_retries=0)
        Worker(queue, burst=True, worker_id="w-broken", concurrency=1).run()
    finally:
        registry._resolvers.remove(broken)
    job.refresh()
    assert job.status == "dead"
    assert "resolver bug" in job.error
