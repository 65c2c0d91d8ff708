"""The worker's other hot path: writing a batch of outcomes. A batch of completions (the
common case) is one statement on PostgreSQL: the rows, their metric rows and the result()
wake-ups together, in autocommit, one round trip instead of BEGIN, two writes and COMMIT."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskito.engine import Engine
from taskito.models import Job, TaskMetric
from taskito.runtime.executor import Executor
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def run_claimed(queue, count):
    engine = Engine(queue)
    claimed = engine.claim(worker_id="here", limit=count)
    executor = Executor(queue, manage_connections=False)
    return engine, [executor(job) for job in claimed]


def test_a_batch_of_completions_is_one_statement_on_postgresql(queue):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the others need a transaction for two writes")
    handles = tasks.add.map([(i, i) for i in range(5)])
    engine, outcomes = run_claimed(queue, 5)
    with CaptureQueriesContext(connection) as queries:
        assert engine.finish(outcomes) == 5
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert [h.result(timeout=1) for h in handles] == [0, 2, 4, 6, 8]
    metrics = TaskMetric.objects.filter(job_id__in=[h.id for h in handles])
    assert sorted(m.job_id for m in metrics) == sorted(h.id for h in handles)
    assert all(m.succeeded and m.task_name == "tests.testapp.tasks.add" for m in metrics)


def test_completions_of_attempts_that_lost_their_job_write_nothing(queue):
    handles = tasks.add.map([(i, i) for i in range(3)])
    engine, outcomes = run_claimed(queue, 3)
    lost = handles[1].id
    Job.objects.filter(id=lost).update(claim_token="newer-attempt")
    assert engine.finish(outcomes) == 2
    assert {h.id: h.refresh().status for h in handles} == {
        handles[0].id: "complete", lost: "running", handles[2].id: "complete"}
    assert set(TaskMetric.objects.values_list("job_id", flat=True)) == {handles[0].id,
                                                                        handles[2].id}
