"""Circuit breakers shared by every worker, stepped with a clock: open -> deferred -> probe ->
closed, and a failed probe reopening the breaker (tasks.guarded: threshold 3 in 60 s,
cooldown 2 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskito.engine import Outcome
from taskito.models import CircuitBreaker, Job
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

COOLDOWN = timedelta(seconds=2)


@pytest.fixture
def t0() -> datetime:
    """A clock a day ahead (jobs enqueued now are due), on a whole second."""
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def switch(tmp_path):
    path = tmp_path / "switch"
    path.write_text("fail")
    return path


@pytest.fixture
def wide(queue) -> Worker:
    return Worker(queue, concurrency=10, worker_id="wide")


def _breaker(queue) -> dict:
    (found,) = [b for b in queue.circuit_breakers() if b["task_name"] == tasks.guarded.name]
    return found


def _open(wide, switch, t0, n: int = 3) -> list:
    """n jobs that fail once each at t0: the breaker opens."""
    jobs = [tasks.guarded.delay(str(switch)) for _ in range(n)]
    assert wide.run_once(now=t0) == n
    return jobs


def test_breaker_opens_after_threshold_failures(queue, wide, switch, t0):
    assert _breaker(queue) == {"task_name": tasks.guarded.name, "state": "closed",
                               "failure_count": 0, "opened_at": None}
    _open(wide, switch, t0)
    assert _breaker(queue) == {"task_name": tasks.guarded.name, "state": "open",
                               "failure_count": 3, "opened_at": t0}


def test_open_breaker_defers_jobs_without_spending_a_retry(queue, wide, switch, t0):
    jobs = _open(wide, switch, t0)
    extra = tasks.guarded.delay(str(switch))
    other = tasks.add.delay(1, 2)
    assert wide.run_once(now=t0 + timedelta(seconds=1)) == 1  # only the other task's job
    assert other.refresh().status == "complete"
    waiting = Job.objects.filter(id__in=[j.id for j in [*jobs, extra]])
    # pending until the cooldown ends, the failed attempt's retry and claim as they were
    assert {(j.status, j.scheduled_at) for j in waiting} == {(0, t0 + COOLDOWN)}
    assert sorted((j.retry_count, j.attempts) for j in waiting) == [(0, 0)] + [(1, 1)] * 3
    assert _breaker(queue)["state"] == "open"


def test_after_cooldown_one_probe_runs_and_its_success_closes(queue, engine, wide, switch,
                                                              t0):
    jobs = _open(wide, switch, t0)
    switch.write_text("ok")
    later = t0 + COOLDOWN
    claimed = engine.claim(worker_id="a", limit=10, now=later)
    assert len(claimed) == 3
    (probe,) = engine.screen(claimed, later)  # the others went back to pending
    assert _breaker(queue)["state"] == "half_open"
    row = CircuitBreaker.objects.get(task_name=tasks.guarded.name)
    assert (row.probe_job_id, row.probe_at) == (probe.id, later)
    others = Job.objects.filter(id__in=[j.id for j in jobs]).exclude(id=probe.id)
    assert {(j.status, j.scheduled_at) for j in others} == {(0, later + timedelta(seconds=1))}
    engine.finish([Outcome(probe, "complete", 1.0, result='"ok"')], now=later)
    assert _breaker(queue) == {"task_name": tasks.guarded.name, "state": "closed",
                               "failure_count": 0, "opened_at": None}
    assert wide.run_once(now=later + timedelta(seconds=1)) == 2
    assert [j.refresh().status for j in jobs] == ["complete"] * 3


def test_failed_probe_reopens_for_another_cooldown(queue, wide, switch, t0):
    jobs = _open(wide, switch, t0)
    later = t0 + COOLDOWN
    assert wide.run_once(now=later) == 1  # the probe, which fails
    assert _breaker(queue) == {"task_name": tasks.guarded.name, "state": "open",
                               "failure_count": 3, "opened_at": later}
    assert wide.run_once(now=later + timedelta(seconds=1)) == 0
    assert {j.refresh().status for j in jobs} == {"pending"}
    assert sorted(Job.objects.filter(id__in=[j.id for j in jobs])
                  .values_list("retry_count", flat=True)) == [1, 1, 2]  # the probe's retry
    switch.write_text("ok")
    assert wide.run_once(now=later + COOLDOWN) == 1  # a new probe, which succeeds
    assert _breaker(queue)["state"] == "closed"
    assert wide.run_once(now=later + COOLDOWN + timedelta(seconds=1)) == 2


def test_exactly_one_probe_among_workers(queue, engine, switch, t0):
    _open(Worker(queue, concurrency=10, worker_id="w0"), switch, t0)
    later = t0 + COOLDOWN
    first = engine.claim(worker_id="a", limit=1, now=later)
    second = engine.claim(worker_id="b", limit=5, now=later)
    assert (len(first), len(second)) == (1, 2)
    (probe,) = engine.screen(second, later)  # b screens first: one of its jobs is the probe
    assert engine.screen(first, later) == []  # a finds the probe taken
    row = CircuitBreaker.objects.get(task_name=tasks.guarded.name)
    assert row.state == 2 and row.probe_job_id == probe.id


def test_a_probe_that_never_reports_is_replaced_after_a_cooldown(queue, engine, switch, t0):
    jobs = _open(Worker(queue, concurrency=10, worker_id="w0"), switch, t0)
    later = t0 + COOLDOWN
    (probe,) = engine.screen(engine.claim(worker_id="a", limit=10, now=later), later)
    queue.cancel_running_job(probe.id)  # its worker died; the probe never reports
    assert engine.screen(engine.claim(worker_id="b", limit=10, now=later + COOLDOWN / 2),
                         later + COOLDOWN / 2) == []
    (second,) = engine.screen(engine.claim(worker_id="b", limit=10, now=later + COOLDOWN),
                              later + COOLDOWN)
    assert second.id != probe.id and second.id in {j.id for j in jobs}


def test_cancelled_attempts_do_not_count(queue, engine, switch, t0):
    for _ in range(3):
        tasks.guarded.delay(str(switch))
    claimed = engine.claim(worker_id="a", limit=10, now=t0)
    engine.finish([Outcome(job, "cancelled", 1.0) for job in claimed], now=t0)
    assert _breaker(queue)["state"] == "closed"
    assert not CircuitBreaker.objects.filter(failure_count__gt=0).exists()


def test_failures_outside_the_window_do_not_add_up(queue, wide, switch, t0):
    _open(wide, switch, t0, n=2)
    assert _breaker(queue)["failure_count"] == 2
    assert wide.run_once(now=t0 + timedelta(seconds=61)) == 2  # their retries: a new window
    assert _breaker(queue) == {"task_name": tasks.guarded.name, "state": "closed",
                               "failure_count": 2, "opened_at": None}
    assert wide.run_once(now=t0 + timedelta(seconds=62)) == 2  # 4 in the window: open
    assert _breaker(queue)["state"] == "open"


def test_tasks_without_a_breaker_pay_no_query(queue, engine, t0):
    for _ in range(3):
        tasks.add.delay(1, 2)
    with CaptureQueriesContext(connection) as claimed:
        jobs = engine.claim(worker_id="a", limit=10, now=t0)
        assert len(engine.screen(jobs, t0)) == 3
        engine.finish([Outcome(job, "retry", 1.0, error="x", retry_at=t0) for job in jobs],
                      now=t0)
    assert not [q for q in claimed.captured_queries if "circuit_breaker" in q["sql"]]
    assert not CircuitBreaker.objects.exists()


def test_circuit_breakers_lists_every_configured_task(queue):
    names = [b["task_name"] for b in queue.circuit_breakers()]
    assert tasks.guarded.name in names and tasks.add.name not in names
