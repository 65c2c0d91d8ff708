"""Signal receivers are user code: one that raises is logged with the job id, and the job's
outcome is recorded once, as if no receiver had been there."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from taskito import signals
from taskito.models import DeadLetter, Job, TaskMetric
from taskito.states import JobStatus
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

SIGNALS = {"job_started": signals.job_started, "job_progress": signals.job_progress,
           "job_finished": signals.job_finished, "job_dead": signals.job_dead,
           "job_enqueued": signals.job_enqueued}


@pytest.fixture
def raising() -> Iterator[list[str]]:
    """Connect a raising receiver to every taskito signal; yields the names it was sent."""
    calls: list[str] = []

    def receiver(name: str):
        def explode(sender, **kwargs):
            calls.append(name)
            raise RuntimeError(f"{name} receiver exploded")
        return explode

    receivers = {name: receiver(name) for name in SIGNALS}
    for name, sig in SIGNALS.items():
        sig.connect(receivers[name], weak=False, dispatch_uid=f"test-raising-{name}")
    yield calls
    for name, sig in SIGNALS.items():
        sig.disconnect(dispatch_uid=f"test-raising-{name}")


def test_raising_receivers_change_no_outcome(raising, worker, caplog,
                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ok = tasks.progress_then_read.delay(7)
        dead = tasks.fatal.delay()
    caplog.set_level(logging.ERROR, logger="taskito.signals")
    assert worker.run_until_empty() == 2
    assert ok.refresh().status == "complete" and ok.result(timeout=1) == 7
    assert dead.refresh().status == "dead"
    assert DeadLetter.objects.filter(original_job_id=dead.id).count() == 1
    assert TaskMetric.objects.count() == 2  # one row per run, none twice
    assert set(raising) == set(SIGNALS)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"job={ok.id}" in logged and f"job={dead.id}" in logged
    assert "job_finished receiver exploded" in logged


def test_a_raising_progress_receiver_does_not_fail_the_task(raising, worker):
    job = tasks.progress_then_read.delay(3)
    worker.run_until_empty()
    assert job.refresh().status == "complete"
    assert Job.objects.get(id=job.id).status == JobStatus.COMPLETE
    assert "job_progress" in raising
