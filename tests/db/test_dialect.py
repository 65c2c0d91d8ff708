"""The dialect contract: every statement of `taskito.db` behaves the same on every database
(this suite runs on SQLite, PostgreSQL and MariaDB). Rows are made through the public API; the
statements are then called on the dialect directly."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from taskito.db import get_dialect
from taskito.db.statements import DEAD_LETTER, JOB_ERROR
from taskito.models import (
    CircuitBreaker,
    DeadLetter,
    Job,
    JobDependency,
    JobError,
    Lease,
    PeriodicTask,
    TaskLog,
    TaskMetric,
    Throttle,
    WorkerHeartbeat,
)
from taskito.states import JobStatus
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def d():
    return get_dialect("default")


def _running(engine, job, worker_id="w"):
    """Claim exactly this job (its own queue keeps the claim from taking others)."""
    Job.objects.filter(id=job.id).update(queue=f"only-{job.id}")
    (claimed,) = engine.claim(worker_id=worker_id, limit=100, queues=[f"only-{job.id}"])
    return claimed


def _status(job) -> JobStatus:
    return JobStatus(Job.objects.get(id=job.id).status)


# -- fencing: every write about an attempt names its claim token ------------------------------
def test_complete_lands_only_for_the_owning_attempt(d, engine):
    a, b = tasks.noop.delay(), tasks.noop.delay()
    ca, cb = _running(engine, a), _running(engine, b)
    now = d.dt(timezone.now())
    with transaction.atomic(), d.cursor() as cursor:
        landed = d.complete_jobs(cursor, [(ca.id, ca.token, "1"), (cb.id, "stale", "2")], now)
    assert landed == {ca.id}
    assert (_status(a), _status(b)) == (JobStatus.COMPLETE, JobStatus.RUNNING)


@pytest.mark.parametrize("status", [JobStatus.DEAD, JobStatus.CANCELLED])
def test_end_and_retry_are_fenced_by_the_token(d, engine, status):
    job = tasks.noop.delay()
    claimed = _running(engine, job)
    now = timezone.now()
    with d.cursor() as cursor:
        assert not d.retry_job(cursor, job.id, "stale", now, "e")
        assert not d.end_job(cursor, job.id, "stale", int(status), "e", d.dt(now))
        assert _status(job) == JobStatus.RUNNING
        assert d.end_job(cursor, job.id, claimed.token, int(status), "e", d.dt(now))
        assert not d.end_job(cursor, job.id, claimed.token, int(status), "e", d.dt(now))
    assert _status(job) == status


def test_end_job_refuses_a_status_it_does_not_end_with(d, engine):
    job = tasks.noop.delay()
    claimed = _running(engine, job)
    with d.cursor() as cursor, pytest.raises(ValueError, match="dead or cancelled"):
        d.end_job(cursor, job.id, claimed.token, int(JobStatus.COMPLETE), None, None)


def test_retry_goes_back_to_pending_at_its_time_and_counts_the_retry(d, engine):
    job = tasks.noop.delay()
    claimed = _running(engine, job)
    later = timezone.now() + timedelta(minutes=5)
    with d.cursor() as cursor:
        assert d.retry_job(cursor, job.id, claimed.token, later, "boom")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.retry_count, row.claim_token, row.error) == (0, 1, None, "boom")
    assert row.scheduled_at == later


def test_progress_is_fenced_and_carries_the_partial_result(d, engine):
    job = tasks.noop.delay()
    claimed = _running(engine, job)
    assert not d.set_progress(job.id, "stale", 50)
    assert d.set_progress(job.id, claimed.token, 40, '{"n": 1}', with_partial=True)
    assert d.set_progress(job.id, claimed.token, 60)
    row = Job.objects.get(id=job.id)
    assert (row.progress, row.partial_result) == (60, '{"n": 1}')


def test_requeue_counts_only_attempts_still_owned(d, engine):
    a, b = tasks.noop.delay(), tasks.noop.delay()
    ca, _ = _running(engine, a), _running(engine, b)
    with d.cursor() as cursor:
        assert d.requeue(cursor, [(ca.id, ca.token), (b.id, "stale")]) == 1
    assert (_status(a), _status(b)) == (JobStatus.PENDING, JobStatus.RUNNING)


def test_defer_gives_the_attempt_back_and_waits(d, engine):
    job = tasks.noop.delay()
    claimed = _running(engine, job)
    until = timezone.now() + timedelta(seconds=30)
    with d.cursor() as cursor:
        d.defer(cursor, [(job.id, claimed.token, until)])
    row = Job.objects.get(id=job.id)
    assert (row.status, row.attempts, row.retry_count, row.scheduled_at) == (0, 0, 0, until)


def test_dead_letter_and_error_rows_copy_the_job(d, engine):
    job = tasks.always_fails.apply_async(args=("x",), metadata={"k": 1})
    claimed = _running(engine, job)
    now = d.dt(timezone.now())
    dead_id = uuid.uuid4()
    with d.cursor() as cursor:
        d.end_job(cursor, job.id, claimed.token, int(JobStatus.DEAD), "E: x", now)
        d.insert_dead_letter(cursor, dead_id, job.id, now)
        d.insert_error(cursor, job.id, 1, "E: x", "tb", now)
    letter = DeadLetter.objects.get(id=dead_id)
    assert (letter.original_job_id, letter.task_name, letter.error, letter.args) == (
        job.id, tasks.always_fails.name, "E: x", '["x"]')
    assert JobError.objects.get(job_id=job.id).attempt == 1


# -- unique keys -----------------------------------------------------------------------------
def test_unique_insert_yields_to_an_active_holder_only(d, queue, engine):
    first = queue.enqueue(tasks.noop.name, unique_key="k")
    assert d.active_unique("k") == first.id
    again = queue.enqueue(tasks.noop.name, unique_key="k")
    assert again.id == first.id and not again.created
    claimed = _running(engine, first)
    assert d.active_unique("k") == first.id  # running still holds it
    with transaction.atomic(), d.cursor() as cursor:
        d.complete_jobs(cursor, [(first.id, claimed.token, None)], d.dt(timezone.now()))
    assert d.active_unique("k") is None
    assert queue.enqueue(tasks.noop.name, unique_key="k").id != first.id


# -- operator verbs ----------------------------------------------------------------------------
def test_cancel_cascades_through_pending_dependents_only(d, engine):
    root = tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[root.id])
    grandchild = tasks.noop.apply_async(depends_on=[child.id])
    other = tasks.noop.delay()
    now = timezone.now()
    with transaction.atomic(), d.cursor() as cursor:
        assert d.cancel_pending(cursor, root.id, now, "cancelled")
        assert not d.cancel_pending(cursor, root.id, now, "cancelled")
        assert d.cancel_dependents(cursor, [root.id], now, "dependency cancelled") == 2
    assert [_status(j) for j in (root, child, grandchild, other)] == [
        JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.PENDING]


def test_expire_due_cancels_only_pending_jobs_past_expiry(d, engine):
    soon = tasks.noop.apply_async(expires=5)
    running = tasks.noop.apply_async(expires=5)
    _running(engine, running)
    later = tasks.noop.apply_async(expires=600)
    with transaction.atomic(), d.cursor() as cursor:
        expired = d.expire_due(cursor, timezone.now() + timedelta(seconds=6))
    assert expired == [soon.id]
    assert [_status(j) for j in (soon, running, later)] == [
        JobStatus.CANCELLED, JobStatus.RUNNING, JobStatus.PENDING]
    assert Job.objects.get(id=soon.id).error == "expired"


def _unique_rows(queue, keys):
    plan = queue.plan(tasks.noop.name, None)
    ids = [uuid.uuid4() for _ in keys]
    return ids, [queue.row(plan, i, "[]", "{}", key) for i, key in zip(ids, keys, strict=True)]


def test_insert_unique_jobs_skips_keys_held_by_active_jobs(d, queue):
    held = tasks.noop.apply_async(unique_key="held")
    ids, rows = _unique_rows(queue, ["held", "free-1", "free-2"])
    with transaction.atomic():
        assert d.insert_unique_jobs(rows) == {ids[1], ids[2]}
    assert d.active_unique_many(["held", "free-1", "nobody"]) == {"held": held.id,
                                                                    "free-1": ids[1]}
    assert not Job.objects.filter(id=ids[0]).exists()


def test_insert_unique_jobs_spans_several_statements(d, queue, monkeypatch):
    monkeypatch.setattr(d, "batch_rows", 2)
    ids, rows = _unique_rows(queue, [f"k{i}" for i in range(5)])
    with transaction.atomic():
        assert d.insert_unique_jobs(rows) == set(ids)
    assert len(d.active_unique_many([f"k{i}" for i in range(5)])) == 5


def test_claim_job_takes_one_pending_job_whatever_its_due_time(d):
    later = tasks.noop.apply_async(delay=3600)
    other = tasks.noop.delay()
    row = d.claim_job(later.id, now=timezone.now(), worker_id="here", token="t1")
    assert row is not None and d.to_uuid(row[0]) == later.id
    assert d.claim_job(later.id, now=timezone.now(), worker_id="here", token="t2") is None
    assert [_status(j) for j in (later, other)] == [JobStatus.RUNNING, JobStatus.PENDING]
    assert Job.objects.get(id=later.id).claim_token == "t1"


def test_claim_job_waits_for_incomplete_dependencies(d, completed_job):
    parent = tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[parent.id])
    done = completed_job()
    ready = tasks.noop.apply_async(depends_on=[done.id])
    assert d.claim_job(child.id, now=timezone.now(), worker_id="w", token="t") is None
    assert d.claim_job(ready.id, now=timezone.now(), worker_id="w", token="t") is not None


def test_delete_dead_letter_once(d, dead_job):
    dead = dead_job()
    letter = DeadLetter.objects.get(original_job_id=dead.id)
    with transaction.atomic(), d.cursor() as cursor:
        assert d.delete_dead_letter(cursor, letter.id)
        assert not d.delete_dead_letter(cursor, letter.id)


def test_delete_jobs_takes_their_child_rows(d, completed_job, dead_job):
    keep, gone = completed_job(), completed_job()
    dependent = tasks.noop.apply_async(depends_on=[gone.id])
    TaskLog.objects.create(job_id=gone.id, task_name="t", level="info", message="m",
                           logged_at=timezone.now())
    with transaction.atomic(), d.cursor() as cursor:
        assert d.delete_jobs(cursor, [gone.id]) == 1
    assert not Job.objects.filter(id=gone.id).exists()
    assert not TaskMetric.objects.filter(job_id=gone.id).exists()
    assert not TaskLog.objects.filter(job_id=gone.id).exists()
    assert not JobDependency.objects.filter(job_id=dependent.id).exists()
    assert Job.objects.filter(id=keep.id).exists()
    assert TaskMetric.objects.filter(job_id=keep.id).exists()


def test_delete_older_prunes_in_batches_and_only_known_tables(d, dead_job):
    for _ in range(3):
        dead_job()
    cutoff = timezone.now() + timedelta(seconds=1)
    assert d.delete_older(DEAD_LETTER, "failed_at", cutoff, 2) == 2
    assert d.delete_older(DEAD_LETTER, "failed_at", cutoff, 2) == 1
    assert DeadLetter.objects.count() == 0
    assert d.delete_older(JOB_ERROR, "failed_at", timezone.now() - timedelta(days=1), 10) == 0
    with pytest.raises(ValueError, match="not pruned"):
        d.delete_older("taskito_job", "created_at", cutoff, 10)


def test_expired_by_own_ttl_finds_finished_jobs_past_their_ttl(d, completed_job):
    short = completed_job(result_ttl=10)
    completed_job(result_ttl=3600)
    completed_job()
    statuses = [int(JobStatus.COMPLETE)]
    now = timezone.now()
    assert d.expired_by_own_ttl(statuses, now, 10) == []
    found = d.expired_by_own_ttl(statuses, now + timedelta(seconds=11), 10)
    assert [d.to_uuid(i) for i in found] == [short.id]


def test_paused_queue_is_not_claimed(d, engine):
    job = tasks.noop.apply_async(queue="held")
    d.set_paused("held", True, timezone.now())
    d.set_paused("held", True, timezone.now())  # an upsert: twice is fine
    assert engine.claim(worker_id="w", limit=5) == []
    d.set_paused("held", False, timezone.now())
    assert [c.id for c in engine.claim(worker_id="w", limit=5)] == [job.id]


def test_a_job_waits_for_every_dependency_to_complete(d, engine):
    a, b = tasks.noop.delay(), tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[a.id, b.id])
    ca = _running(engine, a)
    with transaction.atomic(), d.cursor() as cursor:
        d.complete_jobs(cursor, [(ca.id, ca.token, None)], d.dt(timezone.now()))
    assert child.id not in {c.id for c in engine.claim(worker_id="w", limit=10)}
    assert _status(child) == JobStatus.PENDING


# -- liveness ----------------------------------------------------------------------------------
def test_heartbeat_is_one_row_per_worker(d):
    t0 = timezone.now()
    d.heartbeat("w1", "h", 1, "*", 2, t0, t0)
    d.heartbeat("w1", "h", 1, "*", 2, t0, t0 + timedelta(seconds=5))
    assert WorkerHeartbeat.objects.get().last_seen == t0 + timedelta(seconds=5)
    d.forget_worker("w1")
    assert not WorkerHeartbeat.objects.exists()


def test_lost_jobs_are_those_of_silent_or_rowless_workers(d, engine):
    t0 = timezone.now()
    silent, alive, rowless = tasks.noop.delay(), tasks.noop.delay(), tasks.noop.delay()
    _running(engine, silent, "silent")
    _running(engine, alive, "alive")
    _running(engine, rowless, "rowless")
    d.heartbeat("silent", "h", 1, "*", 1, t0, t0 - timedelta(minutes=5))
    d.heartbeat("alive", "h", 1, "*", 1, t0, t0 + timedelta(minutes=5))
    dead, rows = d.lost_jobs(t0 + timedelta(seconds=1))
    assert dead == ["silent"]
    assert {d.to_uuid(r[0]) for r in rows} == {silent.id, rowless.id}
    assert {r[-1] for r in rows} == {"silent", "rowless"}
    d.delete_stale_workers(dead, t0 + timedelta(seconds=1))
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["alive"]


def test_a_lease_has_one_holder_until_it_expires(d):
    t0 = timezone.now()
    assert d.acquire_lease("l", "a", t0 + timedelta(seconds=10), t0)
    assert not d.acquire_lease("l", "b", t0 + timedelta(seconds=20), t0 + timedelta(seconds=5))
    assert d.acquire_lease("l", "a", t0 + timedelta(seconds=20), t0 + timedelta(seconds=5))
    assert d.acquire_lease("l", "b", t0 + timedelta(seconds=40), t0 + timedelta(seconds=21))
    d.release_lease("l", "a")  # not the holder: nothing happens
    assert Lease.objects.get().holder == "b"
    d.release_lease("l", "b")
    assert not Lease.objects.exists()


def test_a_periodic_due_time_advances_once(d):
    t0 = timezone.now().replace(microsecond=0)
    row = PeriodicTask.objects.create(name="p", task_name="t", cron="* * * * *",
                                      next_run_at=t0)
    nxt = t0 + timedelta(minutes=1)
    with d.cursor() as cursor:
        assert d.advance_periodic(cursor, row.id, t0, nxt, t0)
        assert not d.advance_periodic(cursor, row.id, t0, nxt, t0)
    assert PeriodicTask.objects.get().next_run_at == nxt


# -- throttles ---------------------------------------------------------------------------------
def test_rate_windows_count_up_to_the_limit_then_start_again(d):
    with d.cursor() as cursor:
        assert [d.take_rate(cursor, "rate:x", 7, 2) for _ in range(3)] == [True, True, False]
        assert d.take_rate(cursor, "rate:x", 8, 2)  # a new window
    assert Throttle.objects.get(key="rate:x").count == 1


def test_slots_are_taken_given_back_and_reset(d):
    assert [d.take_slot("conc:task:t", 2) for _ in range(3)] == [True, True, False]
    d.release_slots(["conc:task:t"])
    assert d.take_slot("conc:task:t", 2)
    d.release_slots(["conc:task:t"] * 5)
    assert Throttle.objects.get(key="conc:task:t").count == 0  # never below zero
    d.take_slot("conc:task:t", 2)
    d.take_slot("conc:task:u", 2)
    d.reset_slots("conc:task:", {"conc:task:u": 1})
    assert dict(Throttle.objects.values_list("key", "count")) == {"conc:task:t": 0,
                                                                  "conc:task:u": 1}


# -- circuit breakers --------------------------------------------------------------------------
def _breaker(name: str = "t") -> CircuitBreaker:
    return CircuitBreaker.objects.get(task_name=name)


def test_breaker_failures_count_in_a_window_and_open_at_the_threshold(d):
    t0 = timezone.now()
    with transaction.atomic(), d.cursor() as cursor:
        assert not d.breaker_failures(cursor, "t", 2, t0, 60, 3)
        assert (_breaker().failure_count, _breaker().window_start) == (2, t0)
        # the window ran out: a new one starts with this failure
        assert not d.breaker_failures(cursor, "t", 1, t0 + timedelta(seconds=61), 60, 3)
        assert _breaker().failure_count == 1
        assert not d.breaker_failures(cursor, "t", 1, t0 + timedelta(seconds=62), 60, 3)
        assert d.breaker_failures(cursor, "t", 1, t0 + timedelta(seconds=63), 60, 3)
        assert not d.breaker_failures(cursor, "t", 1, t0 + timedelta(seconds=64), 60, 3)
    row = _breaker()
    assert (row.state, row.failure_count, row.opened_at) == (1, 3, t0 + timedelta(seconds=63))


def test_probe_is_taken_after_the_cooldown_and_only_its_outcome_moves_the_breaker(d):
    t0 = timezone.now()
    probe, other = uuid.uuid4(), uuid.uuid4()
    CircuitBreaker.objects.create(task_name="t", state=1, failure_count=3, opened_at=t0)
    assert not d.take_probe("t", probe, t0 + timedelta(seconds=9), 10)  # cooling down
    assert d.take_probe("t", probe, t0 + timedelta(seconds=10), 10)
    assert not d.take_probe("t", other, t0 + timedelta(seconds=11), 10)  # the probe runs
    assert d.take_probe("t", probe, t0 + timedelta(seconds=12), 10)  # itself, claimed again
    with transaction.atomic(), d.cursor() as cursor:
        assert not d.breaker_probe_failed(cursor, "t", other, t0)
        assert not d.breaker_probe_succeeded(cursor, "t", other)
        assert d.breaker_probe_failed(cursor, "t", probe, t0 + timedelta(seconds=13))
    assert (_breaker().state, _breaker().opened_at) == (1, t0 + timedelta(seconds=13))
    assert d.take_probe("t", other, t0 + timedelta(seconds=23), 10)
    # a probe silent for a whole cooldown is replaced
    assert d.take_probe("t", probe, t0 + timedelta(seconds=33), 10)
    with transaction.atomic(), d.cursor() as cursor:
        assert not d.breaker_probe_succeeded(cursor, "t", other)
        assert d.breaker_probe_succeeded(cursor, "t", probe)
    row = _breaker()
    assert (row.state, row.failure_count, row.opened_at, row.probe_job_id) == (0, 0, None, None)


@pytest.mark.django_db(transaction=True)
def test_of_workers_racing_for_the_probe_exactly_one_wins(d):
    """Eight threads, each on its own connection, ask at the same moment."""
    t0 = timezone.now()
    CircuitBreaker.objects.create(task_name="race", state=1, failure_count=3,
                                  opened_at=t0 - timedelta(seconds=60))
    start = threading.Barrier(8)

    def ask(_: int) -> bool:
        try:
            start.wait(timeout=10)
            return get_dialect("default").take_probe("race", uuid.uuid4(), t0, 10)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(ask, range(8)))
    assert won.count(True) == 1
    assert _breaker("race").state == 2
