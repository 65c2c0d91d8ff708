"""Queue.claim and Queue.finish: the worker's hot path, fenced by claim tokens."""

from __future__ import annotations

import pytest
from django.utils import timezone

from taskito.engine import Outcome
from taskito.models import DeadLetter, Job, JobError, TaskMetric
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _statements(log: list[str]) -> list[str]:
    """The statements of a log, without the savepoints of the test's own transaction."""
    return [sql for sql in log if "SAVEPOINT" not in sql]


def test_claim_costs_one_query(engine, queue, count_queries):
    tasks.noop.map([()] * 20)
    with count_queries() as log:
        claimed = engine.claim(worker_id="w", limit=10)
    assert len(claimed) == 10
    if queue.dialect.vendor == "mysql":
        # no UPDATE ... RETURNING: lock and read, then update by id, in one transaction
        pick, take = _statements(log)
        assert pick.endswith("FOR UPDATE SKIP LOCKED") and take.startswith("UPDATE"), log
    else:
        assert len(log) == 1, log


def test_claim_of_nothing_costs_one_query(engine, queue, count_queries):
    with count_queries() as log:
        assert engine.claim(worker_id="w", limit=10) == []
    assert len(_statements(log)) == 1, log


def test_claim_with_zero_limit_costs_nothing(engine, queue, count_queries):
    tasks.noop.delay()
    with count_queries() as log:
        assert engine.claim(worker_id="w", limit=0) == []
    assert log == []


def test_claim_records_worker_attempt_and_start(engine, queue, row):
    job = tasks.noop.delay()
    (claimed,) = engine.claim(worker_id="w-1", limit=1)
    stored = row(job)
    assert (stored.status, stored.worker_id, stored.attempts, stored.claim_token) == \
        (1, "w-1", 1, claimed.token)
    assert stored.started_at is not None


# -- Queue.finish: every write names the attempt's claim token ---------------------------------

def claim_one(engine, job):
    (claimed,) = [c for c in engine.claim(worker_id="w", limit=10) if c.id == job.id]
    return claimed


def supersede(job):
    Job.objects.filter(id=job.id).update(claim_token="newer-attempt")


def test_finish_applies_an_outcome_of_the_current_attempt(engine, queue, row):
    job = tasks.add.delay(1, 2)
    claimed = claim_one(engine, job)
    assert engine.finish([Outcome(claimed, "complete", 1.0, result="3")]) == 1
    assert (row(job).status, row(job).result) == (2, "3")


def test_finish_drops_a_superseded_completion(engine, queue, row):
    job = tasks.add.delay(1, 2)
    claimed = claim_one(engine, job)
    supersede(job)
    assert engine.finish([Outcome(claimed, "complete", 1.0, result="3")]) == 0
    assert (row(job).status, row(job).claim_token, row(job).result) == \
        (1, "newer-attempt", None)
    assert not TaskMetric.objects.exists()


def test_finish_drops_a_superseded_dead_outcome(engine, queue, row):
    job = tasks.add.delay(1, 2)
    claimed = claim_one(engine, job)
    supersede(job)
    assert engine.finish([Outcome(claimed, "dead", 1.0, error="E: x")]) == 0
    assert row(job).status == 1
    assert not DeadLetter.objects.exists()
    assert not JobError.objects.exists()


def test_finish_drops_a_superseded_retry(engine, queue, row):
    job = tasks.add.delay(1, 2)
    claimed = claim_one(engine, job)
    supersede(job)
    assert engine.finish([Outcome(claimed, "retry", 1.0, error="E: x",
                                 retry_at=timezone.now())]) == 0
    assert (row(job).status, row(job).retry_count) == (1, 0)


def test_finish_drops_an_outcome_for_a_job_already_finished(engine, queue, row):
    job = tasks.add.delay(1, 2)
    claimed = claim_one(engine, job)
    assert engine.finish([Outcome(claimed, "complete", 1.0, result="3")]) == 1
    assert engine.finish([Outcome(claimed, "dead", 1.0, error="late")]) == 0
    assert row(job).status == 2


def test_finish_applies_the_rest_of_a_batch_with_one_superseded(engine, queue, row):
    jobs = [tasks.add.delay(i, i) for i in range(3)]
    claimed = {c.id: c for c in engine.claim(worker_id="w", limit=10)}
    supersede(jobs[1])
    outcomes = [Outcome(claimed[j.id], "complete", 1.0, result="0") for j in jobs]
    assert engine.finish(outcomes) == 2
    assert [row(j).status for j in jobs] == [2, 1, 2]


def test_finish_of_nothing_costs_nothing(engine, queue, count_queries):
    with count_queries() as log:
        assert engine.finish([]) == 0
    assert log == []
