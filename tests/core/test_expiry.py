"""Expired jobs, replay copies, pausing with an upsert, bad queue names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskito.models import Job, QueueState
from tests.testapp import tasks


@pytest.mark.django_db
def test_expire_due_cancels_pending_jobs_past_their_expiry(engine, queue):
    job = tasks.noop.apply_async(expires=10)
    keep = tasks.noop.apply_async(expires=100)
    plain = tasks.noop.delay()
    later = timezone.now() + timedelta(seconds=11)
    assert engine.expire_due(now=later) == 1
    assert job.refresh().status == "cancelled"
    assert job.error == "expired"
    assert keep.refresh().status == "pending"
    assert plain.refresh().status == "pending"


@pytest.mark.django_db
def test_expire_due_cancels_dependents_of_an_expired_job(engine, queue):
    parent = tasks.noop.apply_async(expires=10)
    child = tasks.noop.apply_async(depends_on=[parent.id])
    engine.expire_due(now=timezone.now() + timedelta(seconds=11))
    assert child.refresh().status == "cancelled"
    assert child.error == f"dependency cancelled: {parent.id}"


@pytest.mark.django_db
def test_expired_job_frees_its_unique_key(engine, queue):
    first = tasks.noop.apply_async(expires=10, unique_key="k")
    engine.expire_due(now=timezone.now() + timedelta(seconds=11))
    second = tasks.noop.apply_async(unique_key="k")
    assert second.id != first.id


@pytest.mark.django_db
def test_replay_copies_soft_timeout_and_result_ttl(queue):
    job = tasks.noop.apply_async(soft_timeout=2, result_ttl=60, priority=4, metadata={"a": 1})
    replayed = queue.replay(job.id)
    row = Job.objects.get(id=replayed.id)
    assert (row.soft_timeout_ms, row.result_ttl, row.priority) == (2000, 60, 4)
    assert replayed.metadata == {"a": 1}


@pytest.mark.django_db
def test_pause_twice_then_resume_keeps_one_row(queue):
    queue.pause("emails")
    queue.pause("emails")
    assert queue.paused_queues() == ["emails"]
    queue.resume("emails")
    assert queue.paused_queues() == []
    assert QueueState.objects.filter(name="emails").count() == 1


@pytest.mark.django_db
def test_pause_rejects_an_empty_name(queue):
    with pytest.raises(ValueError, match="queue name"):
        queue.pause("")


@pytest.mark.django_db
def test_enqueue_rejects_an_empty_queue_name():
    with pytest.raises(ValueError, match="queue"):
        tasks.noop.apply_async(queue="")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_tiny_soft_timeout_rounds_up_to_one_millisecond():
    job = tasks.noop.apply_async(soft_timeout=0.0001)
    assert Job.objects.get(id=job.id).soft_timeout_ms == 1


@pytest.mark.django_db
def test_cancelled_error_of_another_job_fails_this_attempt(queue, worker):
    other = tasks.noop.delay()
    queue.cancel_job(other.id)
    job = tasks.waits_on_other_job.delay(str(other.id))
    worker.run_until_empty()
    assert job.refresh().status == "dead"
    assert "TaskCancelledError" in (job.error or "")
