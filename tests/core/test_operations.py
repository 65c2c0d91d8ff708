"""Queue operations: cancel, dead letters, replay, purge, pause."""

from __future__ import annotations

import json
import uuid

import pytest

from taskito import JobNotFound
from taskito.models import (
    DeadLetter,
    Job,
    JobDependency,
    JobError,
    ReplayHistory,
    TaskLog,
    TaskMetric,
)
from tests.conftest import UNKNOWN_ID
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


# -- cancel ------------------------------------------------------------------------------------

def test_cancel_job_cancels_a_pending_job(queue):
    job = tasks.noop.delay()
    assert queue.cancel_job(job.id) is True
    job.refresh()
    assert (job.status, job.error) == ("cancelled", "cancelled")


def test_cancel_job_cascades_to_pending_dependents(queue):
    root = tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[root])
    grandchild = tasks.noop.apply_async(depends_on=[child])
    unrelated = tasks.noop.delay()
    queue.cancel_job(root.id)
    assert [j.refresh().status for j in (child, grandchild, unrelated)] == \
        ["cancelled", "cancelled", "pending"]


def test_cancel_job_cancelled_job_is_not_claimed(queue, worker):
    job = tasks.noop.delay()
    queue.cancel_job(job)
    assert worker.run_once() == 0


@pytest.mark.parametrize("job_id", [UNKNOWN_ID, "garbage", None])
def test_cancel_job_of_unknown_id_is_false(queue, job_id):
    assert queue.cancel_job(job_id) is False


def test_cancel_job_of_a_running_job_is_false(queue, running_job):
    job = running_job()
    assert queue.cancel_job(job.id) is False
    assert job.refresh().status == "running"


def test_cancel_job_of_a_finished_job_is_false(queue, completed_job):
    job = completed_job()
    assert queue.cancel_job(job.id) is False
    assert job.refresh().status == "complete"


def test_cancel_running_job_records_the_request(queue, running_job):
    job = running_job()
    assert queue.cancel_running_job(job.id) is True
    assert Job.objects.get(id=job.id).cancel_requested


@pytest.mark.parametrize("state", ["pending", "unknown", "garbage"])
def test_cancel_running_job_of_a_job_not_running_is_false(queue, state):
    job_id = {"pending": lambda: tasks.noop.delay().id, "unknown": uuid.uuid4,
              "garbage": lambda: "garbage"}[state]()
    assert queue.cancel_running_job(job_id) is False


# -- dead letters --------------------------------------------------------------------------------

def test_dead_job_has_one_dead_letter(queue, dead_job):
    job = dead_job()
    assert DeadLetter.objects.filter(original_job_id=job.id).count() == 1


def test_retry_dead_enqueues_a_new_job_with_the_same_call(queue, dead_job, row):
    job = dead_job(priority=4, metadata={"m": 1})
    (letter,) = queue.dead_letters()
    new_id = queue.retry_dead(letter["id"])
    assert new_id != job.id
    new, old = row(new_id), row(job)
    assert (new.status, new.task_name, new.args, new.kwargs, new.priority, new.metadata) == \
        (0, old.task_name, old.args, old.kwargs, 4, old.metadata)


def _options(job):
    """What a copy must keep: soft timeout, result TTL, expiry span, unique key (and the rest
    that dead letters always kept)."""
    span = None if job.expires_at is None else round((job.expires_at - job.created_at)
                                                     .total_seconds())
    return (job.queue, job.priority, job.max_retries, job.timeout_ms, job.soft_timeout_ms,
            job.result_ttl, span, job.unique_key, job.metadata)


def test_retry_dead_keeps_every_option_of_the_job(queue, dead_job, row):
    job = dead_job(priority=2, queue="q", max_retries=0, timeout=9, soft_timeout=5,
                   result_ttl=60, expires=300, unique_key="once", metadata={"m": 1})
    new_id = queue.retry_dead(queue.dead_letters()[0]["id"])
    new, old = row(new_id), row(job)
    assert _options(new) == _options(old) == (
        "q", 2, 0, 9000, 5000, 60, 300, "once", '{"m":1}')
    assert new.status == 0 and new.scheduled_at >= old.completed_at


def test_retry_dead_after_the_job_row_was_purged_uses_the_task_defaults(queue, worker, row):
    job = tasks.dies_with_options.apply_async(soft_timeout=1, result_ttl=1)
    worker.run_until_empty()
    queue.purge_jobs([job.id])  # as its own result_ttl would
    new = row(queue.retry_dead(queue.dead_letters()[0]["id"]))
    spec = tasks.dies_with_options.spec
    assert (new.soft_timeout_ms, new.result_ttl) == (spec.soft_timeout * 1000, spec.result_ttl)
    assert round((new.expires_at - new.created_at).total_seconds()) == spec.expires


def test_retry_dead_while_its_unique_key_is_held_returns_the_holder(queue, dead_job):
    dead_job(unique_key="once")
    holder = tasks.noop.apply_async(unique_key="once")
    assert queue.retry_dead(queue.dead_letters()[0]["id"]) == holder.id
    assert queue.dead_letters() == []
    assert Job.objects.filter(unique_key="once", status=0).count() == 1


def test_retry_dead_removes_the_dead_letter(queue, dead_job):
    dead_job()
    queue.retry_dead(queue.dead_letters()[0]["id"])
    assert queue.dead_letters() == []


def test_retry_dead_leaves_the_original_job_dead(queue, dead_job):
    job = dead_job()
    queue.retry_dead(queue.dead_letters()[0]["id"])
    assert job.refresh().status == "dead"


@pytest.mark.parametrize("dead_id", [UNKNOWN_ID, "garbage", None])
def test_retry_dead_of_unknown_id_raises_job_not_found(queue, dead_id):
    with pytest.raises(JobNotFound):
        queue.retry_dead(dead_id)


def test_retry_dead_twice_raises_job_not_found(queue, dead_job):
    dead_job()
    dead_id = queue.dead_letters()[0]["id"]
    queue.retry_dead(dead_id)
    with pytest.raises(JobNotFound):
        queue.retry_dead(dead_id)


def test_delete_dead_removes_the_dead_letter(queue, dead_job):
    dead_job()
    assert queue.delete_dead(queue.dead_letters()[0]["id"]) is True
    assert not DeadLetter.objects.exists()


@pytest.mark.parametrize("dead_id", [UNKNOWN_ID, "garbage"])
def test_delete_dead_of_unknown_id_is_false(queue, dead_id):
    assert queue.delete_dead(dead_id) is False


# -- replay --------------------------------------------------------------------------------------

def test_replay_enqueues_a_new_job_with_the_same_call(queue, completed_job, row):
    done = completed_job(5, 6)
    again = queue.replay(done.id)
    assert again.id != done.id
    assert again.status == "pending"
    assert json.loads(row(again).args) == [5, 6]


def test_replay_records_replay_history(queue, completed_job):
    done = completed_job()
    again = queue.replay(done.id)
    assert list(ReplayHistory.objects.values_list("original_job_id", "replay_job_id")) == \
        [(done.id, again.id)]


def test_replay_keeps_every_option_of_the_job(queue, completed_job, row):
    done = completed_job(priority=3, queue="q", soft_timeout=4, result_ttl=30, expires=90,
                         unique_key="nightly", metadata=[1])
    again = queue.replay(done.id)
    assert again.created and _options(row(again)) == _options(row(done)) == (
        "q", 3, 3, 300000, 4000, 30, 90, "nightly", "[1]")


def test_replay_while_its_unique_key_is_held_returns_the_holder(queue, completed_job):
    done = completed_job(unique_key="nightly")
    holder = tasks.noop.apply_async(unique_key="nightly")
    again = queue.replay(done.id)
    assert again.id == holder.id and not again.created
    assert not ReplayHistory.objects.exists()


@pytest.mark.parametrize("job_id", [UNKNOWN_ID, "garbage"])
def test_replay_of_unknown_job_raises_job_not_found(queue, job_id):
    with pytest.raises(JobNotFound):
        queue.replay(job_id)


# -- purge ---------------------------------------------------------------------------------------

def test_purge_completed_deletes_completed_jobs_and_returns_the_count(queue, completed_job):
    completed_job()
    completed_job()
    pending = tasks.noop.delay()
    assert queue.purge_completed(older_than=0) == 2
    assert list(Job.objects.values_list("id", flat=True)) == [pending.id]


def test_purge_completed_keeps_recently_completed_jobs(queue, completed_job):
    completed_job()
    assert queue.purge_completed() == 0
    assert Job.objects.count() == 1


def test_purge_completed_deletes_the_jobs_child_rows(queue, worker):
    parent = tasks.fails_first_attempt.delay()  # one JobError, then completes
    logged = tasks.reports.apply_async(args=(1,), depends_on=[parent])  # a TaskLog
    worker.run_until_empty()
    worker.run_until_empty()
    queue.replay(parent.id)  # ReplayHistory; the replay itself stays pending
    assert (JobError.objects.count(), TaskLog.objects.count(), TaskMetric.objects.count(),
            JobDependency.objects.count(), ReplayHistory.objects.count()) == (1, 1, 3, 1, 1)
    assert logged.refresh().status == "complete"
    assert queue.purge_completed(older_than=0) == 2
    assert (JobError.objects.count(), TaskLog.objects.count(), TaskMetric.objects.count(),
            JobDependency.objects.count(), ReplayHistory.objects.count()) == (0, 0, 0, 0, 0)


def test_purge_completed_keeps_dead_letters(queue, dead_job, completed_job):
    dead_job()
    completed_job()
    queue.purge_completed(older_than=0)
    assert DeadLetter.objects.count() == 1
    assert Job.objects.filter(status=4).count() == 1


@pytest.mark.parametrize("purge", ["purge_completed", "purge_dead"])
def test_purges_select_their_batches_without_sorting(queue, dead_job, completed_job, purge):
    # The models' default ordering (-created_at, -failed_at) would sort every matching row
    # for each batch of 1,000: a million-row purge took hours (bench/soak.py found it).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dead_job()
    completed_job()
    with CaptureQueriesContext(connection) as ctx:
        getattr(queue, purge)(older_than=0)
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper()
               .startswith("SELECT") and ("taskito_job" in q["sql"]
                                          or "taskito_dead_letter" in q["sql"])]
    assert selects
    assert not [sql for sql in selects if "ORDER BY" in sql.upper()]


def test_purge_completed_rejects_negative_age(queue):
    with pytest.raises(ValueError, match="older_than"):
        queue.purge_completed(older_than=-1)


def test_purge_dead_deletes_dead_letters_and_dead_jobs(queue, dead_job, completed_job):
    dead_job()
    dead_job()
    done = completed_job()
    assert queue.purge_dead(older_than=0) == 2
    assert not DeadLetter.objects.exists()
    assert list(Job.objects.values_list("id", flat=True)) == [done.id]


def test_purge_dead_keeps_recent_dead_letters(queue, dead_job):
    dead_job()
    assert queue.purge_dead() == 0
    assert DeadLetter.objects.count() == 1


# -- pause ---------------------------------------------------------------------------------------

def test_pause_lists_the_queue_as_paused(queue):
    queue.pause("emails")
    assert queue.paused_queues() == ["emails"]


def test_resume_removes_the_queue_from_paused(queue):
    queue.pause("emails")
    queue.resume("emails")
    assert queue.paused_queues() == []


def test_paused_queue_jobs_are_not_claimed(queue, worker):
    email = tasks.send_email.delay("a@x")
    other = tasks.noop.delay()
    queue.pause("emails")
    worker.run_until_empty()
    assert (email.refresh().status, other.refresh().status) == ("pending", "complete")


def test_resumed_queue_jobs_are_claimed_again(queue, worker):
    email = tasks.send_email.delay("a@x")
    queue.pause("emails")
    worker.run_until_empty()
    queue.resume("emails")
    assert worker.run_until_empty() == 1
    assert email.refresh().status == "complete"
