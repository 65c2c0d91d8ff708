"""Queue inspection: stats, jobs, dead letters, errors, logs and metrics."""

from __future__ import annotations

import uuid

import pytest

from taskito import JobResult
from tests.conftest import UNKNOWN_ID
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

STATS_KEYS = ["pending", "running", "completed", "failed", "dead", "cancelled"]
DEAD_LETTER_KEYS = {"id", "original_job_id", "queue", "task_name", "error", "retry_count",
                    "failed_at", "metadata"}


def test_stats_keys_are_exactly_the_six_statuses(queue):
    assert list(queue.stats()) == STATS_KEYS


def test_stats_of_an_empty_queue_are_zero(queue):
    assert queue.stats() == dict.fromkeys(STATS_KEYS, 0)


def test_stats_count_jobs_by_status(queue, completed_job, dead_job, running_job):
    completed_job()
    dead_job()
    running_job()
    tasks.noop.delay().cancel()
    tasks.noop.delay()
    tasks.noop.delay()
    assert queue.stats() == {"pending": 2, "running": 1, "completed": 1, "failed": 0,
                             "dead": 1, "cancelled": 1}


def test_stats_of_one_queue(queue):
    tasks.send_email.delay("a@x")
    tasks.noop.delay()
    assert queue.stats("emails")["pending"] == 1
    assert queue.stats("nowhere") == dict.fromkeys(STATS_KEYS, 0)


def test_stats_by_queue_maps_each_queue_to_its_stats(queue, completed_job):
    completed_job()
    tasks.send_email.delay("a@x")
    assert queue.stats_by_queue() == {
        "default": dict(dict.fromkeys(STATS_KEYS, 0), completed=1),
        "emails": dict(dict.fromkeys(STATS_KEYS, 0), pending=1),
    }


def test_stats_cost_does_not_grow_with_rows(engine, queue, count_queries):
    with count_queries() as few:
        queue.stats()
    tasks.noop.map([()] * 200)
    tasks.send_email.map([("a@x",)] * 50)
    engine.claim(worker_id="w", limit=20)
    with count_queries() as many:
        stats = queue.stats()
    assert stats["pending"] == 230
    assert len(many) == len(few) <= 2, many


def test_stats_by_queue_cost_does_not_grow_with_queues(queue, count_queries):
    tasks.noop.delay()
    with count_queries() as few:
        queue.stats_by_queue()
    for i in range(20):
        tasks.noop.apply_async(queue=f"q{i}")
    with count_queries() as many:
        assert len(queue.stats_by_queue()) == 21
    assert len(many) == len(few) <= 2, many


def test_get_job_returns_a_handle_with_the_row(queue):
    job = tasks.add.delay(1, 2)
    found = queue.get_job(job.id)
    assert isinstance(found, JobResult)
    assert (found.id, found.status, found.task_name) == (job.id, "pending", tasks.add.name)


def test_get_job_accepts_the_id_as_a_string(queue):
    job = tasks.add.delay(1, 2)
    assert queue.get_job(str(job.id)).id == job.id


@pytest.mark.parametrize("job_id", [UNKNOWN_ID, str(UNKNOWN_ID), "garbage", "", None, 42])
def test_get_job_of_unknown_or_garbage_id_is_none(queue, job_id):
    tasks.add.delay(1, 2)
    assert queue.get_job(job_id) is None


def test_list_jobs_is_newest_first(queue):
    jobs = [tasks.noop.delay() for _ in range(3)]
    assert [j.id for j in queue.list_jobs()] == [j.id for j in reversed(jobs)]


@pytest.mark.parametrize("status", ["complete", "completed", 2])
def test_list_jobs_filters_by_status(queue, completed_job, status):
    done = completed_job()
    tasks.noop.delay()
    assert [j.id for j in queue.list_jobs(status=status)] == [done.id]


def test_list_jobs_filters_by_queue(queue):
    email = tasks.send_email.delay("a@x")
    tasks.noop.delay()
    assert [j.id for j in queue.list_jobs(queue="emails")] == [email.id]


def test_list_jobs_filters_by_task_name(queue):
    tasks.noop.delay()
    added = tasks.add.delay(1, 2)
    assert [j.id for j in queue.list_jobs(task_name=tasks.add.name)] == [added.id]


def test_list_jobs_pages_with_limit_and_offset(queue):
    jobs = list(reversed([tasks.noop.delay() for _ in range(5)]))
    page = queue.list_jobs(limit=2, offset=1)
    assert [j.id for j in page] == [jobs[1].id, jobs[2].id]


def test_list_jobs_handles_carry_their_row(queue, count_queries):
    tasks.noop.delay()
    listed = queue.list_jobs()
    with count_queries() as log:
        assert listed[0].status == "pending"
        assert set(listed[0].to_dict())
    assert log == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": 0}, ValueError),
        ({"limit": 1001}, ValueError),
        ({"offset": -1}, ValueError),
        ({"limit": "10"}, TypeError),
        ({"offset": 1.5}, TypeError),
        ({"limit": True}, TypeError),
        ({"status": "bogus"}, ValueError),
    ],
)
def test_list_jobs_rejects_bad_arguments(queue, kwargs, error):
    with pytest.raises(error):
        queue.list_jobs(**kwargs)


def test_dead_letters_have_the_api_keys(queue, dead_job):
    dead = dead_job(metadata={"m": 1})
    (letter,) = queue.dead_letters()
    assert set(letter) == DEAD_LETTER_KEYS
    assert letter["original_job_id"] == str(dead.id)
    assert (letter["task_name"], letter["queue"], letter["metadata"]) == \
        (tasks.fatal.name, "default", {"m": 1})
    assert letter["error"] == "Fatal: not worth retrying"


def test_dead_letters_page_with_limit_and_offset(queue, dead_job):
    for _ in range(3):
        dead_job()
    assert len(queue.dead_letters(limit=2)) == 2
    assert len(queue.dead_letters(limit=2, offset=2)) == 1


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"offset": -1}])
def test_dead_letters_reject_bad_paging(queue, kwargs):
    with pytest.raises(ValueError):
        queue.dead_letters(**kwargs)


def test_job_errors_of_unknown_or_garbage_id_are_empty(queue):
    assert queue.job_errors(uuid.uuid4()) == []
    assert queue.job_errors("garbage") == []


def test_task_logs_of_garbage_id_are_empty(queue):
    assert queue.task_logs("garbage") == []


def test_metrics_summarise_runs_per_task(queue, worker):
    tasks.add.delay(1, 2)
    tasks.add.delay(3, 4)
    tasks.fatal.delay()
    worker.run_until_empty()
    metrics = queue.metrics()
    assert metrics[tasks.add.name]["count"] == 2
    assert metrics[tasks.add.name]["succeeded"] == 2
    assert (metrics[tasks.fatal.name]["count"], metrics[tasks.fatal.name]["failed"]) == (1, 1)
    assert set(metrics[tasks.add.name]) == {"count", "succeeded", "failed", "avg_ms", "min_ms",
                                            "max_ms"}


def test_metrics_filter_by_task_name(queue, worker):
    tasks.add.delay(1, 2)
    tasks.noop.delay()
    worker.run_until_empty()
    assert list(queue.metrics(task_name=tasks.noop.name)) == [tasks.noop.name]
