"""Heartbeats, the lifeline lease, rescue of lost jobs and requeue, stepped with a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskito.execution import Outcome
from taskito.models import DeadLetter, JobError, Lease, WorkerHeartbeat
from taskito.runtime.lifeline import Lifeline
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _beat(queue, worker_id, at):
    queue.heartbeat(worker_id=worker_id, hostname="h", pid=1, queues="*", concurrency=1,
                    started_at=at, now=at)


def test_heartbeat_creates_then_refreshes_one_row(queue):
    t0 = timezone.now()
    _beat(queue, "w1", t0)
    _beat(queue, "w1", t0 + timedelta(seconds=5))
    row = WorkerHeartbeat.objects.get()
    assert row.worker_id == "w1"
    assert row.last_seen == t0 + timedelta(seconds=5)


def test_lease_has_one_holder_until_it_expires(queue):
    t0 = timezone.now()
    assert queue.acquire_lease("lifeline", "a", ttl=10, now=t0)
    assert not queue.acquire_lease("lifeline", "b", ttl=10, now=t0 + timedelta(seconds=5))
    assert queue.acquire_lease("lifeline", "a", ttl=10, now=t0 + timedelta(seconds=5))
    assert queue.acquire_lease("lifeline", "b", ttl=10, now=t0 + timedelta(seconds=16))
    assert Lease.objects.get(name="lifeline").holder == "b"


def test_release_lease_lets_another_take_it_at_once(queue):
    t0 = timezone.now()
    queue.acquire_lease("lifeline", "a", ttl=10, now=t0)
    queue.release_lease("lifeline", "a")
    assert queue.acquire_lease("lifeline", "b", ttl=10, now=t0)


def test_rescue_requeues_jobs_of_a_silent_worker_and_counts_the_attempt(queue):
    job = tasks.add.delay(1, 2)
    t0 = timezone.now()
    _beat(queue, "dead-worker", t0)
    [claimed] = queue.claim(worker_id="dead-worker", limit=1, now=t0)
    assert queue.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 1
    job.refresh()
    assert job.status == "pending"
    assert job.retry_count == 1
    assert "worker lost" in (job.error or "")
    assert JobError.objects.filter(job_id=job.id, attempt=1).exists()
    assert not WorkerHeartbeat.objects.filter(worker_id="dead-worker").exists()
    # the lost attempt comes back and tries to finish: fenced off by its claim token
    assert queue.finish([Outcome(claimed, "complete", 1.0, result="3")]) == 0
    assert job.refresh().status == "pending"


def test_rescue_dead_letters_a_job_out_of_retries(queue):
    job = tasks.add.apply_async((1, 2), max_retries=0)
    t0 = timezone.now()
    _beat(queue, "w", t0)
    queue.claim(worker_id="w", limit=1, now=t0)
    queue.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31))
    assert job.refresh().status == "dead"
    assert DeadLetter.objects.get(original_job_id=job.id).error.startswith("worker lost")


def test_rescue_leaves_jobs_of_a_live_worker_alone(queue):
    job = tasks.add.delay(1, 2)
    t0 = timezone.now()
    _beat(queue, "alive", t0)
    queue.claim(worker_id="alive", limit=1, now=t0)
    _beat(queue, "alive", t0 + timedelta(seconds=25))
    assert queue.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 0
    assert job.refresh().status == "running"


def test_rescue_takes_old_jobs_of_a_worker_without_heartbeat_row(queue):
    recent = tasks.add.delay(1, 1)
    t0 = timezone.now()
    queue.claim(worker_id="ghost", limit=1, now=t0)
    assert queue.rescue_lost_jobs(30, now=t0 + timedelta(seconds=5)) == 0
    assert queue.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 1
    assert recent.refresh().status == "pending"


def test_requeue_puts_running_jobs_back_without_spending_a_retry(queue):
    job = tasks.add.delay(1, 2)
    claimed = queue.claim(worker_id="w", limit=1)
    assert queue.requeue(claimed) == 1
    job.refresh()
    assert (job.status, job.retry_count) == ("pending", 0)
    assert queue.requeue(claimed) == 0  # a second time: no longer that attempt's


def test_lifeline_tick_heartbeats_leads_and_expires(queue):
    expiring = tasks.noop.apply_async(expires=1)
    life = Lifeline(queue, worker_id="w", queues="*", concurrency=1, heartbeat_interval=5,
                    stale_after=30)
    life.tick(now=timezone.now() + timedelta(seconds=2))
    assert life.leader
    assert WorkerHeartbeat.objects.filter(worker_id="w").exists()
    assert expiring.refresh().status == "cancelled"
    life.close()
    assert not WorkerHeartbeat.objects.exists()
    assert not Lease.objects.exists()


def test_second_lifeline_does_not_lead_while_the_first_does(queue):
    first = Lifeline(queue, worker_id="a", queues="*", concurrency=1)
    second = Lifeline(queue, worker_id="b", queues="*", concurrency=1)
    first.tick()
    second.tick()
    assert (first.leader, second.leader) == (True, False)
