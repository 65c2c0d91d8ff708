"""task_enqueued (after the enqueueing transaction commits), task_started and task_finished
(sent by the worker around every attempt) and the framework's log lines."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from taskito.backends import TaskitoBackend
from tests.backends.framework import (
    LOGGER,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)
from tests.testapp import django_tasks as t


@pytest.mark.django_db
def test_task_enqueued_is_sent_once_the_transaction_commits(capture,
                                                             django_capture_on_commit_callbacks):
    events = capture(task_enqueued)
    with django_capture_on_commit_callbacks(execute=True):
        result = t.noop_task.enqueue(1)
        assert events == []
    assert events == [(TaskitoBackend, result)]


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_is_sent_at_once_in_autocommit(capture):
    events = capture(task_enqueued)
    result = t.noop_task.enqueue()
    assert events == [(TaskitoBackend, result)]


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_is_not_sent_when_the_transaction_rolls_back(capture):
    events = capture(task_enqueued)
    with pytest.raises(RuntimeError), transaction.atomic():
        t.noop_task.enqueue()
        raise RuntimeError("roll back")
    assert events == []


@pytest.mark.django_db
def test_worker_sends_started_then_finished(worker, capture):
    started, finished = capture(task_started), capture(task_finished)
    result = t.calculate_meaning_of_life.enqueue()

    worker.run_once()

    [(sender, running)] = started
    assert sender is TaskitoBackend
    assert (running.id, running.status, running.attempts) == \
        (result.id, TaskResultStatus.RUNNING, 1)
    [(sender, done)] = finished
    assert sender is TaskitoBackend
    assert (done.id, done.status, done.return_value) == \
        (result.id, TaskResultStatus.SUCCESSFUL, 42)
    assert done == t.calculate_meaning_of_life.get_result(result.id)


@pytest.mark.django_db
def test_task_finished_reports_a_failure_with_its_errors(worker, capture):
    finished = capture(task_finished)
    t.failing_task_value_error.enqueue()
    worker.run_once()
    [(_, done)] = finished
    assert done.status == TaskResultStatus.FAILED
    assert done.errors[0].exception_class is ValueError


@pytest.mark.django_db
def test_every_attempt_is_started_and_finished(worker, capture):
    started, finished = capture(task_started), capture(task_finished)
    t.flaky.enqueue(1)
    worker.run_until_empty()

    assert [(r.status, r.attempts) for _, r in started] == \
        [(TaskResultStatus.RUNNING, 1), (TaskResultStatus.RUNNING, 2)]
    # the failed attempt is finished executing; its task is READY to run again
    assert [(r.status, len(r.errors)) for _, r in finished] == \
        [(TaskResultStatus.READY, 1), (TaskResultStatus.SUCCESSFUL, 1)]


@pytest.mark.django_db
def test_taskito_jobs_send_no_task_signals(worker, capture):
    from tests.testapp import tasks

    started, finished = capture(task_started), capture(task_finished)
    tasks.add.delay(1, 2)
    worker.run_once()
    assert started == finished == []


@pytest.mark.django_db
def test_a_failing_task_finished_receiver_does_not_break_the_worker(worker, caplog):
    def broken(sender, task_result, **kwargs):
        raise RuntimeError("receiver bug")

    task_finished.connect(broken)
    try:
        result = t.calculate_meaning_of_life.enqueue()
        worker.run_once()
    finally:
        task_finished.disconnect(broken)
    assert t.calculate_meaning_of_life.get_result(result.id).return_value == 42
    assert "receiver bug" in caplog.text


@pytest.mark.django_db
def test_framework_logs_enqueue_start_and_finish(worker, caplog,
                                                 django_capture_on_commit_callbacks):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        with django_capture_on_commit_callbacks(execute=True):
            result = t.noop_task.enqueue()
        worker.run_once()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 3, lines
    assert "enqueued" in lines[0] and result.id in lines[0]
    assert "state=RUNNING" in lines[1] and result.id in lines[1]
    assert "state=SUCCESSFUL" in lines[2] and result.id in lines[2]
    assert not any("NoneType" in line for line in lines)


@pytest.mark.django_db
def test_framework_logs_a_failure(worker, caplog):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        result = t.failing_task_value_error.enqueue()
        worker.run_once()
    failed = [r for r in caplog.records if r.name == LOGGER and "state=FAILED" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR]
    assert result.id in failed[0].getMessage()
