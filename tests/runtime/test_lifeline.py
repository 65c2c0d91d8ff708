"""Heartbeats, the lifeline lease, rescue of lost jobs and requeue, stepped with a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskito.engine import Engine, Outcome
from taskito.models import DeadLetter, JobError, Lease, WorkerHeartbeat
from taskito.runtime.lifeline import Lifeline
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _beat(engine, worker_id, at):
    engine.heartbeat(worker_id=worker_id, hostname="h", pid=1, queues="*", concurrency=1,
                    started_at=at, now=at)


def test_heartbeat_creates_then_refreshes_one_row(engine):
    t0 = timezone.now()
    _beat(engine, "w1", t0)
    _beat(engine, "w1", t0 + timedelta(seconds=5))
    row = WorkerHeartbeat.objects.get()
    assert row.worker_id == "w1"
    assert row.last_seen == t0 + timedelta(seconds=5)


def test_lease_has_one_holder_until_it_expires(engine, queue):
    t0 = timezone.now()
    assert engine.acquire_lease("lifeline", "a", ttl=10, now=t0)
    assert not engine.acquire_lease("lifeline", "b", ttl=10, now=t0 + timedelta(seconds=5))
    assert engine.acquire_lease("lifeline", "a", ttl=10, now=t0 + timedelta(seconds=5))
    assert engine.acquire_lease("lifeline", "b", ttl=10, now=t0 + timedelta(seconds=16))
    assert Lease.objects.get(name="lifeline").holder == "b"


def test_release_lease_lets_another_take_it_at_once(engine, queue):
    t0 = timezone.now()
    engine.acquire_lease("lifeline", "a", ttl=10, now=t0)
    engine.release_lease("lifeline", "a")
    assert engine.acquire_lease("lifeline", "b", ttl=10, now=t0)


def test_rescue_requeues_jobs_of_a_silent_worker_and_counts_the_attempt(engine, queue):
    job = tasks.add.delay(1, 2)
    t0 = timezone.now()
    _beat(engine, "dead-worker", t0)
    [claimed] = engine.claim(worker_id="dead-worker", limit=1, now=t0)
    assert engine.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 1
    job.refresh()
    assert job.status == "pending"
    assert job.retry_count == 1
    assert "worker lost" in (job.error or "")
    assert JobError.objects.filter(job_id=job.id, attempt=1).exists()
    assert not WorkerHeartbeat.objects.filter(worker_id="dead-worker").exists()
    # the lost attempt comes back and tries to finish: fenced off by its claim token
    assert engine.finish([Outcome(claimed, "complete", 1.0, result="3")]) == 0
    assert job.refresh().status == "pending"


def test_rescue_dead_letters_a_job_out_of_retries(engine, queue):
    job = tasks.add.apply_async((1, 2), max_retries=0)
    t0 = timezone.now()
    _beat(engine, "w", t0)
    engine.claim(worker_id="w", limit=1, now=t0)
    engine.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31))
    assert job.refresh().status == "dead"
    assert DeadLetter.objects.get(original_job_id=job.id).error.startswith("worker lost")


def test_rescue_leaves_jobs_of_a_live_worker_alone(engine, queue):
    job = tasks.add.delay(1, 2)
    t0 = timezone.now()
    _beat(engine, "alive", t0)
    engine.claim(worker_id="alive", limit=1, now=t0)
    _beat(engine, "alive", t0 + timedelta(seconds=25))
    assert engine.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 0
    assert job.refresh().status == "running"


def test_rescue_takes_old_jobs_of_a_worker_without_heartbeat_row(engine, queue):
    recent = tasks.add.delay(1, 1)
    t0 = timezone.now()
    engine.claim(worker_id="ghost", limit=1, now=t0)
    assert engine.rescue_lost_jobs(30, now=t0 + timedelta(seconds=5)) == 0
    assert engine.rescue_lost_jobs(30, now=t0 + timedelta(seconds=31)) == 1
    assert recent.refresh().status == "pending"


def test_requeue_puts_running_jobs_back_without_spending_a_retry(engine, queue):
    job = tasks.add.delay(1, 2)
    claimed = engine.claim(worker_id="w", limit=1)
    assert engine.requeue(claimed) == 1
    job.refresh()
    assert (job.status, job.retry_count) == ("pending", 0)
    assert engine.requeue(claimed) == 0  # a second time: no longer that attempt's


def test_lifeline_tick_heartbeats_leads_and_expires(queue):
    expiring = tasks.noop.apply_async(expires=1)
    life = Lifeline(Engine(queue), worker_id="w", queues="*", concurrency=1, heartbeat_interval=5,
                    stale_after=30)
    life.tick(now=timezone.now() + timedelta(seconds=2))
    assert life.leader
    assert WorkerHeartbeat.objects.filter(worker_id="w").exists()
    assert expiring.refresh().status == "cancelled"
    life.close()
    assert not WorkerHeartbeat.objects.exists()
    assert not Lease.objects.exists()


def test_second_lifeline_does_not_lead_while_the_first_does(queue):
    first = Lifeline(Engine(queue), worker_id="a", queues="*", concurrency=1)
    second = Lifeline(Engine(queue), worker_id="b", queues="*", concurrency=1)
    first.tick()
    second.tick()
    assert (first.leader, second.leader) == (True, False)


def test_a_short_heartbeat_interval_keeps_the_lease_with_its_holder(queue):
    # The lease lives 2 x HEARTBEAT_INTERVAL: with 0.2 s it must be renewed more often than
    # once a second, or it lapses between renewals and passes to another worker.
    import time

    first = Lifeline(Engine(queue), worker_id="a", queues="*", concurrency=1,
                     heartbeat_interval=0.2)
    second = Lifeline(Engine(queue), worker_id="b", queues="*", concurrency=1,
                      heartbeat_interval=0.2)
    first.tick()
    assert first.leader
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < 1.6:  # both ticking, as two workers' would
        first.tick()
        if elapsed > 0.5:  # out of step with the first's renewals
            second.tick()
        assert (first.leader, second.leader) == (True, False)
