"""current_job: what a running task knows and can record about itself."""

from __future__ import annotations

import pytest

from taskito import TaskCancelledError, current_job
from taskito.exceptions import SerializationError
from taskito.models import DeadLetter, TaskLog
from tests.testapp import tasks


@pytest.mark.django_db
def test_current_job_identifies_the_running_job(worker):
    job = tasks.who_am_i.apply_async(queue="special")
    worker.run_once()
    assert job.result(timeout=1) == {"id": str(job.id), "task": tasks.who_am_i.name,
                                     "queue": "special", "retry": 0}


@pytest.mark.django_db
def test_current_job_retry_count_counts_earlier_attempts(worker):
    job = tasks.fails_first_attempt.delay()
    worker.run_until_empty()
    assert job.result(timeout=1) == 1


def test_current_job_outside_a_worker_is_empty():
    assert (current_job.id, current_job.task_name, current_job.queue_name,
            current_job.retry_count, current_job.in_job) == (None, None, None, 0, False)


@pytest.mark.django_db
def test_current_job_is_empty_again_after_the_task(worker):
    tasks.who_am_i.delay()
    worker.run_once()
    assert current_job.id is None


@pytest.mark.django_db
def test_update_progress_writes_the_job_row(worker):
    job = tasks.progress_then_read.delay(40)
    worker.run_once()
    assert job.result(timeout=1) == 40


@pytest.mark.django_db
def test_update_progress_sends_job_progress(worker, capture):
    from taskito import signals

    events = capture(signals.job_progress)
    job = tasks.reports.delay(4)
    worker.run_once()
    assert events == [{"job_id": job.id, "progress": p} for p in (25, 50, 75, 100)]


@pytest.mark.parametrize("value", [-1, 101, 100.5])
def test_update_progress_rejects_out_of_range_values(value):
    with pytest.raises(ValueError, match="0 to 100"):
        current_job.update_progress(value)


@pytest.mark.parametrize("value", ["50", True, None])
def test_update_progress_rejects_non_numbers(value):
    with pytest.raises(TypeError):
        current_job.update_progress(value)


@pytest.mark.django_db
def test_update_progress_outside_a_worker_does_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert current_job.update_progress(50) is None
        assert current_job.update_progress(60, partial={"rows": 3}) is None
    # the partial result is still checked, as a worker would: the same error inline
    with pytest.raises(SerializationError):
        current_job.update_progress(70, partial=object())


@pytest.mark.django_db
def test_update_progress_bad_value_in_a_task_fails_the_attempt(worker):
    job = tasks.progress_then_read.apply_async(args=(150,), max_retries=0)
    worker.run_once()
    job.refresh()
    assert (job.status, job.error) == ("dead", "ValueError: progress must be from 0 to 100, "
                                                "not 150")


@pytest.mark.django_db
def test_log_stores_a_task_log_row_with_extra(worker):
    job = tasks.logs_extra.delay("hello", {"user": 7, "tags": ["a"]})
    worker.run_once()
    (log,) = TaskLog.objects.filter(job_id=job.id)
    assert (log.task_name, log.level, log.message, log.extra) == \
        (tasks.logs_extra.name, "warning", "hello", '{"user":7,"tags":["a"]}')


@pytest.mark.django_db
def test_log_rows_keep_their_order(worker):
    job = tasks.reports.delay(3)
    worker.run_once()
    assert [entry["message"] for entry in job.logs] == ["step 1", "step 2", "step 3"]


def test_log_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="log level"):
        current_job.log("x", level="loud")


@pytest.mark.django_db
def test_log_outside_a_worker_stores_nothing():
    current_job.log("inline", level="INFO")
    assert not TaskLog.objects.exists()


@pytest.mark.django_db
def test_check_cancelled_outside_a_worker_does_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert current_job.check_cancelled() is None
        assert current_job.check_timeout() is None


@pytest.mark.django_db
def test_check_cancelled_without_a_request_lets_the_job_finish(worker):
    job = tasks.cancellable.delay()
    worker.run_once()
    assert job.refresh().status == "complete"


@pytest.mark.django_db
def test_check_cancelled_after_cancel_running_job_cancels_the_job(queue, worker, on_start):
    on_start(lambda job_id, **_: queue.cancel_running_job(job_id))
    job = tasks.cancellable.apply_async(max_retries=3)
    assert worker.run_until_empty() == 1
    job.refresh()
    assert (job.status, job.retry_count) == ("cancelled", 0)
    with pytest.raises(TaskCancelledError):
        job.result(timeout=1)


@pytest.mark.django_db
def test_check_cancelled_cancellation_is_not_a_failure(queue, worker, on_start):
    on_start(lambda job_id, **_: queue.cancel_running_job(job_id))
    job = tasks.cancellable.apply_async(max_retries=3)
    worker.run_until_empty()
    assert job.errors == []
    assert not DeadLetter.objects.exists()
