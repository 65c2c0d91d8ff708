"""taskito.queue: the async twins answer like the sync methods they wrap."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from taskito import JobNotFound, JobResult, Queue
from taskito.models import DeadLetter
from tests.testapp import tasks


def run(twin, *args, **kwargs):
    """Call an async twin from sync code, as a sync Django view would (async_to_sync keeps
    its sync_to_async calls in this thread, on this thread's connection)."""
    return async_to_sync(twin)(*args, **kwargs)


def test_queue_repr_names_the_alias():
    assert repr(Queue(using="other")) == "<Queue using=other>"


def test_queue_default_is_the_settings_backed_queue(queue):
    assert queue.using == "default"
    assert queue.default_queue == "default"


@pytest.fixture
def populated(completed_job, dead_job, worker):
    """A few jobs in different states, with errors, logs and a paused queue."""
    completed_job()
    failed = dead_job()
    tasks.reports.delay(1)
    worker.run_until_empty()
    tasks.send_email.delay("a@x")
    tasks.add.queue.pause("paused")
    return failed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("stats", ()),
        ("stats_by_queue", ()),
        ("dead_letters", ()),
        ("paused_queues", ()),
    ],
)
def test_async_twin_returns_what_the_sync_method_returns(queue, populated, name, args):
    expected = getattr(queue, name)(*args)
    assert run(getattr(queue, f"a{name}"), *args) == expected


@pytest.mark.django_db(transaction=True)
def test_alist_jobs_returns_the_same_jobs(queue, populated):
    assert [j.id for j in run(queue.alist_jobs, status="dead")] == \
        [j.id for j in queue.list_jobs(status="dead")] == [populated.id]


@pytest.mark.django_db(transaction=True)
def test_ajob_errors_and_atask_logs_return_the_same_rows(queue, populated):
    assert run(queue.ajob_errors, populated.id) == queue.job_errors(populated.id)
    logged = queue.list_jobs(task_name=tasks.reports.name)[0]
    assert run(queue.atask_logs, logged.id) == queue.task_logs(logged.id)


@pytest.mark.django_db(transaction=True)
def test_aget_job_returns_the_job(queue):
    job = tasks.add.delay(1, 2)
    found = run(queue.aget_job, job.id)
    assert isinstance(found, JobResult)
    assert (found.id, found.status) == (job.id, "pending")


@pytest.mark.django_db(transaction=True)
def test_aget_job_of_unknown_id_is_none(queue):
    assert run(queue.aget_job, uuid.uuid4()) is None


@pytest.mark.django_db(transaction=True)
def test_acancel_job_cancels_like_cancel_job(queue):
    job = tasks.noop.delay()
    assert run(queue.acancel_job, job.id) is True
    assert run(queue.acancel_job, job.id) is False
    assert job.refresh().status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_aretry_dead_enqueues_a_new_job(queue, dead_job):
    dead_job()
    new_id = run(queue.aretry_dead, queue.dead_letters()[0]["id"])
    assert queue.get_job(new_id).status == "pending"
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_aretry_dead_of_unknown_id_raises_job_not_found(queue):
    with pytest.raises(JobNotFound):
        run(queue.aretry_dead, uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_apurge_completed_returns_the_count(queue, completed_job):
    completed_job()
    assert run(queue.apurge_completed, older_than=0) == 1


@pytest.mark.django_db(transaction=True)
def test_apause_and_aresume(queue):
    run(queue.apause, "emails")
    assert run(queue.apaused_queues) == ["emails"]
    run(queue.aresume, "emails")
    assert queue.paused_queues() == []


@pytest.mark.django_db(transaction=True)
def test_aenqueue_enqueues_a_job(queue):
    job = run(queue.aenqueue, tasks.add.name, (1, 2))
    assert queue.get_job(job.id).task_name == tasks.add.name
