"""taskito.signals: sent with the documented keyword arguments."""

from __future__ import annotations

import pytest
from django.db import transaction

from taskito import signals
from taskito.models import DeadLetter
from taskito.runtime.executor import Executor
from tests.testapp import tasks


@pytest.mark.django_db
def test_job_enqueued_is_sent_on_commit(capture, django_capture_on_commit_callbacks):
    events = capture(signals.job_enqueued)
    with django_capture_on_commit_callbacks(execute=True):
        job = tasks.send_email.delay("a@x")
        assert events == []  # not before the enqueueing transaction commits
    assert events == [{"job_id": job.id, "task_name": tasks.send_email.name,
                       "queue": "emails"}]


@pytest.mark.django_db
def test_job_enqueued_is_sent_for_every_mapped_job(capture, django_capture_on_commit_callbacks):
    events = capture(signals.job_enqueued)
    with django_capture_on_commit_callbacks(execute=True):
        jobs = tasks.add.map([(1, 1), (2, 2)])
    assert [e["job_id"] for e in events] == [j.id for j in jobs]


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_is_not_sent_when_the_transaction_rolls_back(capture):
    events = capture(signals.job_enqueued)
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.delay(1, 2)
        raise RuntimeError("roll back")
    assert events == []


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_is_sent_at_once_in_autocommit(capture):
    events = capture(signals.job_enqueued)
    job = tasks.add.delay(1, 2)
    assert [e["job_id"] for e in events] == [job.id]


@pytest.mark.django_db
def test_job_started_is_sent_with_job_task_queue_and_attempt(worker, capture):
    events = capture(signals.job_started)
    job = tasks.send_email.delay("a@x")
    worker.run_once()
    assert events == [{"job_id": job.id, "task_name": tasks.send_email.name, "queue": "emails",
                       "attempt": 1}]


@pytest.mark.django_db
def test_job_started_sender_is_the_executor(worker):
    senders = []

    def receiver(sender, **kwargs):
        senders.append(sender)

    signals.job_started.connect(receiver)
    try:
        tasks.noop.delay()
        worker.run_once()
    finally:
        signals.job_started.disconnect(receiver)
    assert senders == [Executor]


@pytest.mark.django_db
def test_job_started_attempt_counts_retries(worker, capture):
    events = capture(signals.job_started)
    tasks.always_fails.delay()
    worker.run_until_empty()
    assert [e["attempt"] for e in events] == [1, 2, 3]


@pytest.mark.django_db
def test_job_finished_is_sent_on_success(worker, capture):
    events = capture(signals.job_finished)
    job = tasks.add.delay(1, 2)
    worker.run_once()
    assert events == [{"job_id": job.id, "task_name": tasks.add.name, "queue": "default",
                       "status": "complete", "error": None}]


@pytest.mark.django_db
def test_job_finished_reports_a_retry_as_pending(worker, capture):
    events = capture(signals.job_finished)
    tasks.always_fails.delay("x")
    worker.run_once()
    assert [(e["status"], e["error"]) for e in events] == [("pending", "Retryable: x")]


@pytest.mark.django_db
def test_job_finished_reports_dead(worker, capture):
    events = capture(signals.job_finished)
    tasks.fatal.delay()
    worker.run_once()
    assert [(e["status"], e["error"]) for e in events] == \
        [("dead", "Fatal: not worth retrying")]


@pytest.mark.django_db
def test_job_finished_reports_cancelled(worker, capture, queue, on_start):
    on_start(lambda job_id, **_: queue.cancel_running_job(job_id))
    events = capture(signals.job_finished)
    tasks.cancellable.delay()
    worker.run_once()
    assert [e["status"] for e in events] == ["cancelled"]


@pytest.mark.django_db
def test_job_dead_names_the_dead_letter(worker, capture):
    events = capture(signals.job_dead)
    job = tasks.fatal.delay()
    worker.run_once()
    letter = DeadLetter.objects.get()
    assert events == [{"job_id": job.id, "dead_letter_id": letter.id,
                       "task_name": tasks.fatal.name, "error": "Fatal: not worth retrying"}]


@pytest.mark.django_db
def test_job_dead_is_not_sent_for_a_retry(worker, capture):
    events = capture(signals.job_dead)
    tasks.always_fails.delay()
    worker.run_once()
    assert events == []


@pytest.mark.django_db
def test_job_finished_is_not_sent_for_a_superseded_outcome(worker, capture, on_start):
    from taskito.models import Job

    on_start(lambda job_id, **_: Job.objects.filter(id=job_id).update(claim_token="newer"))
    events = capture(signals.job_finished)
    tasks.noop.delay()
    worker.run_once()
    assert events == []


@pytest.mark.django_db(transaction=True)
def test_receivers_connected_for_a_sender_hear_that_sender(worker, queue):
    """A receiver connected with `sender=` its signal's sender (the queue's class, the
    Executor, the engine's class) is called like one connected for every sender: the cheap
    "anyone listening?" checks ask about that sender."""
    from taskito.engine import Engine
    from taskito.queue import Queue

    heard = []

    def receiver(sender, signal, **kwargs):
        heard.append((signal, sender))

    wiring = [(signals.job_enqueued, Queue), (signals.job_started, Executor),
              (signals.job_finished, Engine), (signals.job_dead, Engine)]
    for signal, sender in wiring:
        signal.connect(receiver, sender=sender)
    try:
        tasks.noop.delay()
        tasks.fatal.delay()
        worker.run_until_empty()
    finally:
        for signal, sender in wiring:
            signal.disconnect(receiver, sender=sender)
    assert {pair for pair in heard} == set(wiring)
