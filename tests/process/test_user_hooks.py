"""A worker process whose signal receivers and middleware all raise still finishes every job
exactly once and exits 0 on --burst."""

from __future__ import annotations

import pytest

from taskito.models import DeadLetter, Job, TaskMetric
from taskito.states import JobStatus
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def test_worker_with_raising_receivers_and_middleware_finishes_each_job_once(spawn):
    ok = tasks.add.map([(i, 1) for i in range(20)])
    progress = tasks.progress_then_read.delay(5)
    dead = tasks.fatal.delay()
    retried = tasks.fails_first_attempt.delay()
    worker = spawn("worker", worker_argv("--burst", "--concurrency", "4",
                                         "--settings", "tests.process.settings_raising_receivers"))
    assert worker.wait(timeout=60) == 0, worker.describe()
    assert Job.objects.filter(status=JobStatus.COMPLETE).count() == 22
    assert dead.refresh().status == "dead" and retried.result(timeout=1) == 1
    assert DeadLetter.objects.count() == 1
    assert TaskMetric.objects.count() == 24  # one row per run: nothing re-applied on exit
    assert progress.result(timeout=1) == 5 and ok[3].result(timeout=1) == 4
    assert "receiver exploded" in worker.stderr and "Traceback" in worker.stderr
    for hook, job in (("before", dead), ("after", ok[0]), ("on_retry", retried),
                      ("on_dead_letter", dead)):
        assert f"middleware failed middleware=Raising hook={hook} job={job.id}" \
            in worker.stderr, hook
