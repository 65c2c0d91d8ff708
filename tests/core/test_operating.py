"""Operating in production: workers(), requeue_job() and revoke_task()."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskito.models import DeadLetter, Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def beat(engine, worker_id: str, queues: str = "*", concurrency: int = 4, **at) -> None:
    now = at.get("now") or timezone.now()
    engine.heartbeat(worker_id=worker_id, hostname="host-a", pid=123, queues=queues,
                     concurrency=concurrency, started_at=now - timedelta(minutes=5), now=now)


# -- workers() -------------------------------------------------------------------------------
def test_workers_lists_heartbeats_newest_first_with_busy_slots(queue, engine):
    now = timezone.now()
    beat(engine, "w-old", queues="mail,reports", now=now - timedelta(seconds=20))
    beat(engine, "w-new", concurrency=2, now=now)
    tasks.noop.delay(), tasks.noop.delay(), tasks.noop.delay()
    assert len(engine.claim(worker_id="w-new", limit=2)) == 2
    old, new = queue.workers()[1], queue.workers()[0]
    assert new == {"id": "w-new", "host": "host-a", "pid": 123, "queues": ["*"],
                   "concurrency": 2, "busy": 2, "started_at": new["started_at"],
                   "last_heartbeat": new["last_heartbeat"]}
    assert new["last_heartbeat"] - new["started_at"] == timedelta(minutes=5)
    assert (old["id"], old["queues"], old["busy"]) == ("w-old", ["mail", "reports"], 0)


def test_workers_answers_in_two_queries_whatever_the_number_of_workers(queue, engine):
    for n in range(5):
        beat(engine, f"w{n}")
        tasks.noop.delay()
        engine.claim(worker_id=f"w{n}", limit=1)
    with CaptureQueriesContext(connections[queue.using]) as ctx:
        workers = queue.workers()
    assert [w["busy"] for w in workers] == [1] * 5
    assert len(ctx.captured_queries) == 2


def test_workers_is_empty_without_heartbeats(queue):
    assert queue.workers() == []


# -- requeue_job() ---------------------------------------------------------------------------
def test_requeue_job_puts_a_dead_job_back_and_removes_its_dead_letter(queue, dead_job, worker,
                                                                      row):
    job = dead_job()
    assert DeadLetter.objects.filter(original_job_id=job.id).exists()
    assert queue.requeue_job(job.id) is True
    again = row(job)
    assert (again.status, again.retry_count, again.attempts) == (0, 0, 0)
    assert (again.error, again.completed_at, again.started_at) == (None, None, None)
    assert not DeadLetter.objects.filter(original_job_id=job.id).exists()
    worker.run_until_empty()  # it runs again (and, being fatal, dies again)
    assert (row(job).status, row(job).attempts) == (4, 1)


def test_requeue_job_puts_a_cancelled_job_back_and_it_runs(queue, worker, row):
    job = tasks.add.delay(2, 3)
    assert queue.cancel_job(job.id)
    assert queue.requeue_job(str(job.id)) is True
    worker.run_until_empty()
    assert job.result(timeout=5) == 5


def test_requeue_job_puts_a_failed_job_back(queue, completed_job, row):
    job = completed_job()
    Job.objects.filter(id=job.id).update(status=3, error="boom", retry_count=2,
                                         expires_at=timezone.now() - timedelta(hours=1))
    assert queue.requeue_job(job.id) is True
    again = row(job)
    assert (again.status, again.retry_count, again.error, again.expires_at) == (0, 0, None, None)


def test_requeue_job_refuses_active_and_complete_jobs(queue, completed_job, running_job, row):
    done, running, pending = completed_job(), running_job(), tasks.noop.delay()
    for job, status in ((done, 2), (running, 1), (pending, 0)):
        assert queue.requeue_job(job.id) is False
        assert row(job).status == status


@pytest.mark.parametrize("job_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", None])
def test_requeue_job_answers_false_for_unknown_ids(queue, job_id):
    assert queue.requeue_job(job_id) is False


def test_requeue_job_refuses_a_job_whose_unique_key_an_active_job_holds(queue, row):
    first = tasks.unique_by_args.delay(1)
    assert queue.cancel_job(first.id)
    holder = tasks.unique_by_args.delay(1)
    assert holder.id != first.id
    assert queue.requeue_job(first.id) is False
    assert row(first).status == 5
    assert queue.requeue_job(first.id) is False  # and the refusal left nothing behind


def test_requeue_job_refuses_a_job_waiting_on_a_failed_dependency(queue, worker, row):
    parent = tasks.fatal.delay()
    child = tasks.noop.apply_async(depends_on=[parent.id])
    worker.run_until_empty()
    assert row(child).status == 5  # cancelled with its dead parent
    assert queue.requeue_job(child.id) is False
    assert queue.requeue_job(parent.id) is True
    assert queue.requeue_job(child.id) is False  # the parent is pending, not complete


# -- revoke_task() ---------------------------------------------------------------------------
def test_revoke_task_cancels_every_pending_job_of_the_task_only(queue, running_job, row):
    running = running_job()
    pending = [tasks.noop.delay() for _ in range(3)]
    other = tasks.add.delay(1, 2)
    assert queue.revoke_task(tasks.noop.name) == 3
    assert [row(j).status for j in pending] == [5, 5, 5]
    assert (row(running).status, row(other).status) == (1, 0)
    assert queue.revoke_task(tasks.noop.name) == 0


def test_revoke_task_cancels_dependents_as_cancel_job_does(queue, row):
    parent = tasks.noop.delay()
    child = tasks.add.apply_async(args=(1, 2), depends_on=[parent.id])
    assert queue.revoke_task(tasks.noop.name) == 1
    assert row(child).status == 5
    assert "dependency cancelled" in row(child).error


@pytest.mark.parametrize("name", ["", None, 3])
def test_revoke_task_rejects_a_non_name(queue, name):
    with pytest.raises(ValueError, match="task name"):
        queue.revoke_task(name)

