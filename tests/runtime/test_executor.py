"""How an attempt ends: success, retry, dead letter (run with Worker.run_once)."""

from __future__ import annotations

import pytest

from taskito import MaxRetriesExceededError
from taskito.models import DeadLetter, Job, JobError, TaskMetric
from taskito.runtime.executor import Executor
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_run_once_success_stores_the_result(worker):
    job = tasks.add.delay(2, 3)
    assert worker.run_once() == 1
    job.refresh()
    assert (job.status, job.result(timeout=1), job.progress, job.error) == \
        ("complete", 5, 100, None)


def test_run_once_success_sets_completed_at(worker):
    job = tasks.add.delay(2, 3)
    worker.run_once()
    stored = Job.objects.get(id=job.id)
    assert stored.completed_at is not None
    assert stored.completed_at >= stored.started_at


def test_run_once_success_records_a_metric(worker):
    job = tasks.add.delay(2, 3)
    worker.run_once()
    metric = TaskMetric.objects.get(job_id=job.id)
    assert (metric.task_name, metric.queue, metric.succeeded) == (tasks.add.name, "default", True)
    # add() takes microseconds: the metric is milliseconds of that, not seconds or a timestamp
    assert 0 < metric.wall_time_ms < 1000


def test_run_once_metric_measures_the_task_s_own_time(worker):
    job = tasks.spins_then_checks_timeout.delay(0.05)
    worker.run_once()
    metric = TaskMetric.objects.get(job_id=job.id)
    assert 50 <= metric.wall_time_ms < 50_000


def test_run_once_failure_is_retried(worker):
    job = tasks.always_fails.delay("first")
    worker.run_once()
    job.refresh()
    assert (job.status, job.retry_count, job.error) == ("pending", 1, "Retryable: first")


def test_run_once_failure_records_one_error_per_attempt(worker):
    job = tasks.always_fails.delay()
    worker.run_until_empty()
    assert list(JobError.objects.filter(job_id=job.id).order_by("attempt")
                .values_list("attempt", "error")) == [(1, "Retryable: boom"),
                                                      (2, "Retryable: boom"),
                                                      (3, "Retryable: boom")]


def test_run_once_failure_stores_the_traceback(worker):
    job = tasks.always_fails.delay()
    worker.run_once()
    assert "raise Retryable(message)" in JobError.objects.get(job_id=job.id).traceback


def test_run_once_exhausted_retries_make_the_job_dead(worker):
    job = tasks.always_fails.delay()  # max_retries=2: three attempts
    assert worker.run_until_empty() == 3
    job.refresh()
    assert (job.status, job.retry_count) == ("dead", 2)


def test_run_once_dead_job_has_a_dead_letter(worker):
    job = tasks.always_fails.delay()
    worker.run_until_empty()
    letter = DeadLetter.objects.get(original_job_id=job.id)
    assert (letter.task_name, letter.error, letter.retry_count) == \
        (tasks.always_fails.name, "Retryable: boom", 2)


def test_run_once_dead_job_result_raises_max_retries_exceeded(worker):
    job = tasks.always_fails.delay()
    worker.run_until_empty()
    with pytest.raises(MaxRetriesExceededError, match="Retryable: boom"):
        job.result(timeout=1)


def test_run_once_failure_records_a_failed_metric(worker):
    job = tasks.fatal.delay()
    worker.run_once()
    assert list(TaskMetric.objects.filter(job_id=job.id).values_list("succeeded", flat=True)) \
        == [False]


def test_run_once_max_retries_zero_dies_on_the_first_failure(worker):
    job = tasks.always_fails.apply_async(max_retries=0)
    assert worker.run_until_empty() == 1
    assert job.refresh().status == "dead"


def test_run_once_dont_retry_on_goes_dead_at_once(worker):
    job = tasks.fatal.delay()  # max_retries=5, dont_retry_on=[Fatal]
    assert worker.run_until_empty() == 1
    assert job.refresh().status == "dead"
    assert len(job.errors) == 1


def test_run_once_retry_on_retries_a_listed_exception(worker):
    job = tasks.only_retries_retryable.delay("retryable")
    worker.run_once()
    assert job.refresh().status == "pending"


def test_run_once_retry_on_does_not_retry_other_exceptions(worker):
    job = tasks.only_retries_retryable.delay("other")
    worker.run_once()
    job.refresh()
    assert (job.status, job.error) == ("dead", "ValueError: other")


def test_run_once_non_json_result_fails_the_attempt(worker):
    job = tasks.returns_object.delay()  # max_retries=1
    worker.run_once()
    job.refresh()
    assert job.status == "pending"
    assert job.error.startswith(f"SerializationError: result of {tasks.returns_object.name} "
                                "is not JSON-serializable")


def test_a_result_text_the_database_cannot_store_fails_the_attempt(queue):
    """A lone surrogate encodes to JSON but not to UTF-8: the attempt fails with a clear error
    (and is retried), instead of every write of its batch failing after it."""
    import time

    from taskito.engine import Engine
    from taskito.registry import registry

    job = tasks.returns_object.delay()
    engine = Engine(queue)
    claimed = engine.claim(worker_id="here", limit=1)[0]
    outcome = Executor(queue, manage_connections=False).outcome(
        registry.get(claimed.task_name), claimed, "\ud800", None, time.perf_counter(), None)
    assert outcome.kind == "retry"
    assert outcome.error.startswith(f"SerializationError: result of {tasks.returns_object.name}")
    assert engine.finish([outcome]) == 1
    assert job.refresh().status == "pending"


def test_run_once_non_json_result_ends_dead_after_retries(worker):
    job = tasks.returns_object.delay()
    worker.run_until_empty()
    assert job.refresh().status == "dead"
    assert [e["attempt"] for e in job.errors] == [1, 2]


def test_run_once_unknown_task_does_not_stop_other_jobs(queue, worker):
    queue.enqueue("no.such.task")  # deferred (tests/runtime/test_unknown_tasks.py)
    ok = tasks.add.delay(1, 1)
    assert worker.run_once() == 1
    assert ok.refresh().status == "complete"


def test_run_once_runs_async_def_tasks(worker):
    job = tasks.async_add.delay(4, 5)
    worker.run_once()
    assert job.result(timeout=1) == 9


def test_run_once_passes_kwargs(worker):
    job = tasks.echo.apply_async(args=(1,), kwargs={"k": "v"})
    worker.run_once()
    assert job.result(timeout=1) == {"args": [1], "kwargs": {"k": "v"}}


def test_run_once_result_none_is_stored_as_null(worker):
    job = tasks.noop.delay()
    worker.run_once()
    assert job.result(timeout=1) is None
    assert Job.objects.get(id=job.id).result == "null"


def test_run_once_soft_timeout_passed_fails_the_job(worker):
    job = tasks.spins_then_checks_timeout.apply_async(args=(0.02,), soft_timeout=0.005)
    worker.run_once()
    job.refresh()
    assert job.status == "dead"
    assert job.error.startswith("SoftTimeoutError")


def test_run_once_soft_timeout_not_passed_lets_the_job_finish(worker):
    job = tasks.spins_then_checks_timeout.apply_async(args=(0,), soft_timeout=60)
    worker.run_once()
    assert job.result(timeout=1) == "in time"
