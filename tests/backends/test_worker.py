"""Django tasks run by a taskito worker: results, errors, context, ordering, and the mapping of
taskito's retry, dead letter and cancel onto the framework's statuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskito.models import DeadLetter, Job
from taskito.registry import registry
from taskito.runtime.worker import Worker
from tests.backends.framework import TaskResultStatus, task_started
from tests.testapp import django_tasks as t

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("task", [t.noop_task, t.noop_task_async], ids=["sync", "async"])
def test_enqueued_task_runs_and_succeeds(worker, task):
    result = task.enqueue(1, two=3)

    assert worker.run_once() == 1

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished is True
    assert result.return_value is None
    assert result.started_at >= result.enqueued_at
    assert result.last_attempted_at == result.started_at
    assert result.finished_at >= result.started_at
    assert (result.task, result.args, result.kwargs) == (task, [1], {"two": 3})
    assert (result.attempts, result.worker_ids, result.errors) == (1, ["test-worker"], [])


def test_return_value_comes_back_normalized(worker):
    results = [t.calculate_meaning_of_life.enqueue(), t.async_add.enqueue(2, 3),
               t.echo.enqueue(1, x=(2, 3))]
    worker.run_until_empty()
    assert [r.task.get_result(r.id).return_value for r in results] == \
        [42, 5, {"args": [1], "kwargs": {"x": [2, 3]}}]


@pytest.mark.parametrize(("task", "exception", "message"), [
    (t.failing_task_value_error, ValueError, "This Task failed due to ValueError"),
    (t.failing_task_system_exit, SystemExit, "This Task failed due to SystemExit"),
])
def test_exception_fails_the_task_with_its_class_and_traceback(worker, task, exception,
                                                               message):
    result = task.enqueue()
    worker.run_once()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished is True
    assert result.finished_at >= result.started_at >= result.enqueued_at
    [error] = result.errors
    assert error.exception_class is exception
    assert error.traceback.endswith(f"{exception.__name__}: {message}\n"), error.traceback


def test_complex_exception(worker):
    result = t.complex_exception.enqueue()
    worker.run_once()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert "ValueError: This task failed" in result.errors[0].traceback


def test_non_json_return_value_fails_the_task(worker):
    result = t.complex_return_value.enqueue()
    worker.run_once()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_own_exception_class_path_is_recorded(worker):
    result = t.always_fails.enqueue("x")
    worker.run_until_empty()
    result.refresh()
    assert [e.exception_class_path for e in result.errors] == \
        ["tests.testapp.django_tasks.Boom"] * 2
    assert all(e.exception_class is t.Boom for e in result.errors)


def test_takes_context_gets_the_running_result(worker):
    ids = t.get_task_id.enqueue()
    context = t.check_context.enqueue(1)
    state = t.running_state.enqueue()
    worker.run_until_empty()

    assert t.get_task_id.get_result(ids.id).return_value == ids.id
    assert t.check_context.get_result(context.id).status == TaskResultStatus.SUCCESSFUL
    assert t.running_state.get_result(state.id).return_value == {
        "status": "RUNNING", "worker_ids": ["test-worker"], "job_id": state.id}


def test_higher_priority_runs_first(queue):
    low = t.noop_task.using(priority=-5).enqueue()
    high = t.noop_task.using(priority=50).enqueue()
    one_at_a_time = Worker(queue, concurrency=1, worker_id="w1")

    one_at_a_time.run_once()

    assert high.task.get_result(high.id).status == TaskResultStatus.SUCCESSFUL
    assert low.task.get_result(low.id).status == TaskResultStatus.READY


def test_run_after_holds_the_task_until_then(worker):
    later = timezone.now() + timedelta(hours=1)
    result = t.noop_task.using(run_after=later).enqueue()

    assert worker.run_once() == 0
    assert worker.run_once(now=later + timedelta(seconds=1)) == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.task.run_after == later


def test_queue_name_is_the_taskito_queue(queue):
    result = t.noop_task.using(queue_name="reports").enqueue()

    assert Worker(queue, queues=["default"], worker_id="w1").run_once() == 0
    assert Worker(queue, queues=["reports"], worker_id="w2").run_once() == 1
    assert t.noop_task.get_result(result.id).worker_ids == ["w2"]


# -- taskito's retries, dead letters and cancellation --------------------------------------
def test_waiting_to_retry_is_ready_with_its_errors(worker):
    result = t.flaky.enqueue(1)
    worker.run_once()

    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert result.attempts == 1
    assert [(e.exception_class, e.traceback.splitlines()[-1]) for e in result.errors] == \
        [(t.Boom, "tests.testapp.django_tasks.Boom: attempt 1")]
    assert result.finished_at is None

    worker.run_once()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2  # the context's attempt count
    assert result.attempts == 2 and len(result.errors) == 1
    assert result.worker_ids == ["unknown", "test-worker"]


def test_exhausted_retries_fail_and_leave_a_dead_letter(worker, queue):
    result = t.always_fails.enqueue("no luck")
    assert worker.run_until_empty() == 2

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 2 and len(result.errors) == 2
    letter = DeadLetter.objects.get()
    assert (str(letter.original_job_id), letter.task_name) == \
        (result.id, t.always_fails.module_path)

    again = str(queue.retry_dead(letter.id))
    retried = t.always_fails.get_result(again)
    assert (retried.status, retried.args, retried.task) == \
        (TaskResultStatus.READY, ["no luck"], t.always_fails)


def test_dont_retry_on_fails_at_once(worker):
    result = t.not_worth_retrying.enqueue()
    assert worker.run_until_empty() == 1
    assert t.not_worth_retrying.get_result(result.id).status == TaskResultStatus.FAILED


def test_cancelled_pending_task_is_failed_without_errors(queue, worker):
    result = t.noop_task.enqueue()

    assert queue.cancel_job(result.id) is True

    result.refresh()
    assert (result.status, result.errors, result.attempts) == (TaskResultStatus.FAILED, [], 0)
    assert result.finished_at is not None
    assert worker.run_once() == 0


def test_cancelled_running_task_is_failed(queue, worker):
    def cancel(sender, task_result, **kwargs):
        queue.cancel_running_job(task_result.id)

    task_started.connect(cancel)
    try:
        result = t.cancellable.enqueue()
        worker.run_once()
    finally:
        task_started.disconnect(cancel)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert Job.objects.get(id=result.id).status_label == "cancelled"


def test_replayed_job_is_a_result_of_the_same_task(queue, worker):
    result = t.calculate_meaning_of_life.enqueue()
    worker.run_once()
    replay = queue.replay(result.id)
    worker.run_once()
    assert t.calculate_meaning_of_life.get_result(str(replay.id)).return_value == 42


def test_worker_resolves_a_task_it_has_not_registered(worker):
    result = t.echo.enqueue("hi")
    registry.unregister(t.echo.module_path)  # as in a worker process that never imported it

    worker.run_once()

    assert t.echo.get_result(result.id).return_value == {"args": ["hi"], "kwargs": {}}
    assert registry.find(t.echo.module_path) is not None


def test_job_of_a_removed_task_is_dead_lettered(queue, worker):
    job = queue.enqueue("tests.testapp.django_tasks.no_such_task")
    worker.run_once(now=timezone.now() + timedelta(seconds=601))  # past UNKNOWN_TASK_GRACE
    assert job.refresh().status == "dead"
    assert "TaskNotRegistered" in (job.error or "")
