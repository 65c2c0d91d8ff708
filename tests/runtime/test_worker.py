"""Worker.run_once: which jobs a worker claims, in which order, and when."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskito.models import DeadLetter, Job, JobError, TaskMetric
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def completion_order(worker: Worker, jobs: list) -> list:
    """Step a one-at-a-time worker and return the jobs in the order they completed."""
    order = []
    while worker.run_once():
        done = [j for j in jobs if j not in order and j.refresh().status == "complete"]
        assert len(done) == 1
        order.extend(done)
    return order


def test_run_once_claims_higher_priority_first(queue):
    low = tasks.noop.apply_async(priority=0)
    high = tasks.noop.apply_async(priority=9)
    mid = tasks.noop.apply_async(priority=5)
    worker = Worker(queue, concurrency=1)
    assert completion_order(worker, [low, high, mid]) == [high, mid, low]


def test_run_once_claims_older_first_within_a_priority(queue):
    jobs = [tasks.noop.apply_async(priority=1) for _ in range(4)]
    worker = Worker(queue, concurrency=1)
    assert completion_order(worker, list(reversed(jobs))) == jobs


def test_run_once_claims_at_most_concurrency_jobs(queue):
    tasks.noop.map([()] * 5)
    assert Worker(queue, concurrency=2).run_once() == 2
    assert queue.stats()["pending"] == 3


def test_run_once_with_nothing_ready_returns_zero(worker):
    assert worker.run_once() == 0


def test_run_until_empty_runs_every_ready_job(worker, queue):
    tasks.noop.map([()] * 10)
    assert worker.run_until_empty() == 10
    assert queue.stats()["completed"] == 10


def test_run_once_does_not_claim_a_delayed_job_early(worker):
    job = tasks.noop.apply_async(delay=60)
    assert worker.run_once(now=timezone.now() + timedelta(seconds=59)) == 0
    assert job.refresh().status == "pending"


def test_run_once_claims_a_delayed_job_once_due(worker):
    job = tasks.noop.apply_async(delay=60)
    assert worker.run_once(now=timezone.now() + timedelta(seconds=61)) == 1
    assert job.refresh().status == "complete"


def test_run_once_records_the_step_clock(worker):
    job = tasks.noop.apply_async(delay=60)
    later = (timezone.now() + timedelta(seconds=61)).replace(microsecond=0)
    worker.run_once(now=later)
    stored = Job.objects.get(id=job.id)
    assert (stored.started_at, stored.completed_at) == (later, later)


def test_run_once_retry_waits_for_its_retry_delay(worker):
    job = tasks.retries_in_a_minute.delay()  # retry_delays=[60]
    now = timezone.now()
    worker.run_once(now=now)
    assert worker.run_once(now=now + timedelta(seconds=30)) == 0
    assert worker.run_once(now=now + timedelta(seconds=61)) == 1
    assert job.refresh().retry_count == 2


def test_run_once_retry_delay_counts_from_the_step_clock(worker):
    tasks.retries_in_a_minute.apply_async(delay=86_400)
    tomorrow = timezone.now() + timedelta(seconds=86_401)
    assert worker.run_once(now=tomorrow) == 1
    assert worker.run_once(now=tomorrow + timedelta(seconds=30)) == 0


def test_run_once_does_not_claim_an_expired_job(worker):
    job = tasks.noop.apply_async(expires=5)
    assert worker.run_once(now=timezone.now() + timedelta(seconds=6)) == 0
    assert job.refresh().status == "pending"


def test_worker_queues_filter_claims_only_those_queues(queue):
    email = tasks.send_email.delay("a@x")
    other = tasks.noop.delay()
    Worker(queue, queues=["emails"]).run_until_empty()
    assert (email.refresh().status, other.refresh().status) == ("complete", "pending")


def test_worker_queues_filter_accepts_several_queues(queue):
    tasks.send_email.delay("a@x")
    tasks.noop.apply_async(queue="reports")
    tasks.noop.apply_async(queue="ignored")
    assert Worker(queue, queues=["emails", "reports"]).run_until_empty() == 2


def test_worker_without_queues_claims_every_queue(queue, worker):
    tasks.send_email.delay("a@x")
    tasks.noop.apply_async(queue="reports")
    assert worker.run_until_empty() == 2


@pytest.mark.parametrize("options", [{"concurrency": -1}, {"max_jobs": 0}, {"max_jobs": -2}])
def test_worker_rejects_bad_options(queue, options):
    with pytest.raises(ValueError):
        Worker(queue, **options)


def test_worker_rejects_zero_concurrency(queue):
    with pytest.raises(ValueError, match="concurrency"):
        Worker(queue, concurrency=0)


# -- claim tokens fence out an attempt that lost the job ------------------------------------

def take_over(job_id, **_):
    """Simulate a newer attempt: the lifeline requeued the job and another worker claimed it."""
    Job.objects.filter(id=job_id).update(claim_token="newer-attempt", worker_id="other")


def test_run_once_superseded_success_is_dropped(worker, on_start):
    on_start(take_over)
    job = tasks.add.delay(1, 2)
    worker.run_once()
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.claim_token, stored.worker_id, stored.result) == \
        (1, "newer-attempt", "other", None)
    assert not TaskMetric.objects.exists()


def test_run_once_superseded_failure_is_dropped(worker, on_start):
    on_start(take_over)
    job = tasks.fatal.delay()
    worker.run_once()
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.claim_token, stored.error) == (1, "newer-attempt", None)
    assert not JobError.objects.exists()
    assert not DeadLetter.objects.exists()


def test_run_once_superseded_retry_is_dropped(worker, on_start):
    on_start(take_over)
    job = tasks.always_fails.delay()
    worker.run_once()
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.retry_count, stored.claim_token) == (1, 0, "newer-attempt")


def test_run_once_superseded_outcome_does_not_block_the_others(worker, on_start):
    victim = tasks.noop.delay()
    on_start(lambda job_id, **kw: take_over(job_id) if job_id == victim.id else None)
    others = [tasks.add.delay(i, i) for i in range(3)]
    assert worker.run_once() == 4
    assert [j.refresh().status for j in others] == ["complete"] * 3
    assert victim.refresh().status == "running"
