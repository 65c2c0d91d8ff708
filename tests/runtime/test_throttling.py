"""Rate limits and concurrency limits shared by every worker (stepped with a clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from taskito.exceptions import ConfigurationError
from taskito.models import Job, Throttle
from taskito.registry import build_spec
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db



@pytest.fixture
def minute() -> datetime:
    """Ten seconds into a minute a day from now: in the future, so etas stay as given (an eta
    in the past is due now), whatever day the suite runs on."""
    return (datetime.now(UTC) + timedelta(days=1)).replace(second=10, microsecond=0)


@pytest.fixture
def wide(queue) -> Worker:
    return Worker(queue, concurrency=10, worker_id="wide")


def _statuses(jobs):
    return [j.refresh().status for j in jobs]


def test_rate_limited_task_runs_at_most_its_rate_per_window(wide, minute):
    jobs = [tasks.limited.apply_async((i,), eta=minute - timedelta(seconds=5)) for i in range(5)]
    assert wide.run_once(now=minute) == 2
    assert _statuses(jobs).count("complete") == 2
    waiting = Job.objects.filter(status=0)
    # put back for the next minute, spending neither a retry nor an attempt
    assert {j.scheduled_at for j in waiting} == {minute.replace(second=0) + timedelta(minutes=1)}
    assert {(j.retry_count, j.attempts) for j in waiting} == {(0, 0)}
    assert wide.run_once(now=minute + timedelta(seconds=30)) == 0
    assert wide.run_once(now=minute + timedelta(minutes=1)) == 2


def test_queue_rate_limit_from_settings(wide, minute):
    jobs = [tasks.add.apply_async((i, i), eta=minute - timedelta(seconds=5)) for i in range(3)]
    with override_settings(TASKITO={"QUEUE_RATE_LIMITS": {"default": "1/s"}}):
        assert wide.run_once(now=minute) == 1
        assert wide.run_once(now=minute + timedelta(seconds=1)) == 1
    assert _statuses(jobs).count("complete") == 2


def test_concurrency_and_rate_limit_together_spend_neither_for_a_deferred_job(wide, minute):
    """A job that waits for a slot spends no run of the rate; a job that waits for the rate
    holds no slot (it would block its task's other jobs for a whole window)."""
    jobs = [tasks.exclusive_limited.apply_async((i,), eta=minute - timedelta(seconds=5))
            for i in range(3)]
    slot = f"conc:task:{tasks.exclusive_limited.name}"
    rate = f"rate:task:{tasks.exclusive_limited.name}"

    def counters():
        return {t.key: t.count for t in Throttle.objects.filter(key__in=[slot, rate])}

    assert wide.run_once(now=minute) == 1  # one slot: the others wait half a second
    assert _statuses(jobs).count("complete") == 1
    assert counters() == {slot: 0, rate: 1}
    assert wide.run_once(now=minute + timedelta(seconds=1)) == 1  # the rate's second run
    assert counters() == {slot: 0, rate: 2}
    (last,) = Job.objects.filter(status=0)
    assert wide.run_once(now=minute + timedelta(seconds=2)) == 0  # the slot is free, the rate
    last.refresh_from_db()                                          # is not
    assert last.scheduled_at == minute.replace(second=0) + timedelta(minutes=1)
    assert counters() == {slot: 0, rate: 2}  # the slot it took for a moment is given back
    assert wide.run_once(now=minute + timedelta(minutes=1)) == 1
    assert _statuses(jobs) == ["complete"] * 3


def test_concurrency_limit_admits_one_and_defers_the_other(engine, queue):
    first, second = tasks.exclusive.delay(), tasks.exclusive.delay()
    claimed = engine.claim(worker_id="a", limit=10)
    run, later = engine.admit(claimed)
    assert [j.id for j in run] == [first.id]
    assert [j.id for j, _ in later] == [second.id]
    assert Throttle.objects.get(key=f"conc:task:{tasks.exclusive.name}").count == 1


def test_concurrency_limit_holds_across_workers(engine, queue):
    tasks.exclusive.delay()
    tasks.exclusive.delay()
    mine = engine.claim(worker_id="a", limit=1)
    theirs = engine.claim(worker_id="b", limit=1)
    assert len(engine.admit(mine)[0]) == 1
    assert engine.admit(theirs)[0] == []


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_finishing_gives_the_slot_back(queue, worker, fail):
    tasks.exclusive.delay(fail)
    worker.run_once()
    assert Throttle.objects.get(key=f"conc:task:{tasks.exclusive.name}").count == 0


def test_deferred_job_runs_once_the_slot_is_free(queue, worker):
    jobs = [tasks.exclusive.delay(), tasks.exclusive.delay()]
    assert worker.run_once() == 1
    assert worker.run_once(now=datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert _statuses(jobs) == ["complete", "complete"]


def test_repair_slots_counts_what_really_runs(engine, queue):
    Throttle.objects.create(key=f"conc:task:{tasks.exclusive.name}", count=5)
    engine.repair_slots()
    assert Throttle.objects.get().count == 0


def test_max_concurrent_must_be_positive():
    with pytest.raises(ConfigurationError, match="max_concurrent"):
        build_spec(lambda: None, name="x", max_concurrent=0)
