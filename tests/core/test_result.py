"""JobResult: the handle on one job."""

from __future__ import annotations

import asyncio

import pytest

from taskito import (
    JobNotFound,
    MaxRetriesExceededError,
    TaskCancelledError,
    TaskFailedError,
)
from taskito.models import Job
from taskito.states import JobStatus
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

#: the job JSON of docs/api.md (GET /jobs/{job_id})
JOB_KEYS = {"id", "queue", "task_name", "status", "priority", "progress", "retry_count",
            "max_retries", "created_at", "scheduled_at", "started_at", "completed_at", "error",
            "timeout_ms", "unique_key", "metadata"}


def test_job_result_status_is_read_when_first_asked():
    assert tasks.add.delay(1, 2).status == "pending"


def test_job_result_status_is_as_of_the_last_refresh(worker):
    job = tasks.add.delay(1, 2)
    assert job.status == "pending"
    worker.run_once()
    assert job.status == "pending"
    assert job.refresh().status == "complete"


def test_job_result_status_running(running_job):
    assert running_job().refresh().status == "running"


@pytest.mark.parametrize("code", list(JobStatus))
def test_job_result_status_is_the_status_name(code):
    job = tasks.noop.delay()
    Job.objects.filter(id=job.id).update(status=code)
    assert job.refresh().status == code.label


def test_job_result_refresh_of_a_purged_job_raises_job_not_found(queue, completed_job):
    job = completed_job()
    queue.purge_completed(older_than=0)
    with pytest.raises(JobNotFound):
        job.refresh()


def test_job_result_fields_read_the_row():
    job = tasks.send_email.apply_async(args=("a@x",), metadata={"k": 1})
    assert (job.task_name, job.queue_name, job.progress, job.retry_count, job.error,
            job.metadata) == (tasks.send_email.name, "emails", 0, 0, None, {"k": 1})
    assert job.created_at is not None


def test_job_result_equality_is_by_id(queue):
    job = tasks.noop.delay()
    assert queue.get_job(job.id) == job
    assert len({job, queue.get_job(job.id)}) == 1


def test_result_returns_the_value_of_a_completed_job(completed_job):
    assert completed_job(20, 22).result(timeout=1) == 42


@pytest.mark.parametrize("timeout", [0, -1, "5", True, None])
def test_result_rejects_a_timeout_that_is_not_positive(timeout):
    with pytest.raises(ValueError, match="timeout"):
        tasks.noop.delay().result(timeout=timeout)


def test_result_raises_timeout_error_while_the_job_is_pending():
    job = tasks.noop.delay()
    with pytest.raises(TimeoutError, match="still pending"):
        job.result(timeout=0.05)


def test_result_raises_max_retries_exceeded_for_a_dead_job(dead_job):
    with pytest.raises(MaxRetriesExceededError, match="Fatal: not worth retrying"):
        dead_job().result(timeout=1)


def test_result_raises_task_cancelled_for_a_cancelled_job():
    job = tasks.noop.delay()
    job.cancel()
    with pytest.raises(TaskCancelledError):
        job.result(timeout=1)


def test_result_raises_task_failed_for_a_failed_job():
    job = tasks.noop.delay()
    Job.objects.filter(id=job.id).update(status=JobStatus.FAILED, error="gave up")
    with pytest.raises(TaskFailedError, match="gave up") as info:
        job.result(timeout=1)
    assert not isinstance(info.value, MaxRetriesExceededError)


def test_max_retries_exceeded_is_a_task_failed_error():
    assert issubclass(MaxRetriesExceededError, TaskFailedError)


def test_to_dict_has_exactly_the_api_job_keys():
    assert set(tasks.noop.delay().to_dict()) == JOB_KEYS


def test_to_dict_values(completed_job):
    data = completed_job(unique_key="k", metadata={"user": 7}).to_dict()
    assert data["status"] == "complete"
    assert data["task_name"] == tasks.add.name
    assert data["progress"] == 100
    assert data["unique_key"] == "k"
    assert data["metadata"] == {"user": 7}
    assert isinstance(data["id"], str)


def test_to_dict_timestamps_are_iso_8601_with_a_time_zone(completed_job):
    data = completed_job().to_dict()
    for key in ("created_at", "scheduled_at", "started_at", "completed_at"):
        assert data[key].endswith("+00:00"), (key, data[key])


def test_job_result_errors_list_every_failed_attempt(worker):
    job = tasks.always_fails.delay("nope")
    worker.run_until_empty()
    errors = job.errors
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert set(errors[0]) == {"id", "job_id", "attempt", "error", "failed_at"}
    assert errors[0]["error"] == "Retryable: nope"
    assert errors[0]["job_id"] == str(job.id)


def test_job_result_logs_list_the_tasks_log_lines(worker):
    job = tasks.reports.delay(2)
    worker.run_once()
    logs = job.logs
    assert [(entry["message"], entry["extra"]) for entry in logs] == \
        [("step 1", {"i": 0}), ("step 2", {"i": 1})]
    assert set(logs[0]) == {"id", "job_id", "task_name", "level", "message", "extra",
                            "logged_at"}


def test_job_result_cancel_cancels_a_pending_job():
    job = tasks.noop.delay()
    assert job.cancel() is True
    assert job.refresh().status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_aresult_returns_the_value(completed_job):
    job = completed_job(2, 3)
    assert asyncio.run(job.aresult(timeout=5)) == 5
