"""Queue.enqueue / Task.delay / apply_async / map / enqueue_many: what lands on the row."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from taskito import Queue, SerializationError
from taskito.models import Job, JobDependency
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


# -- apply_async: every per-call option ends up on the row ------------------------------------

@pytest.mark.parametrize(
    ("options", "field", "expected"),
    [
        ({"priority": 9}, "priority", 9),
        ({"priority": -3}, "priority", -3),
        ({"queue": "urgent"}, "queue", "urgent"),
        ({"max_retries": 1}, "max_retries", 1),
        ({"max_retries": 0}, "max_retries", 0),
        ({"timeout": 30}, "timeout_ms", 30_000),
        ({"timeout": 1.5}, "timeout_ms", 1_500),
        ({"soft_timeout": 10}, "soft_timeout_ms", 10_000),
        ({"unique_key": "daily-report"}, "unique_key", "daily-report"),
        ({"result_ttl": 600}, "result_ttl", 600),
        ({"metadata": {"user": 7}}, "metadata", '{"user":7}'),
    ],
)
def test_apply_async_stores_option_on_the_row(row, options, field, expected):
    job = tasks.add.apply_async(args=(1, 2), **options)
    assert getattr(row(job), field) == expected


def test_apply_async_delay_schedules_that_many_seconds_after_creation(row):
    stored = row(tasks.add.apply_async(args=(1, 2), delay=30))
    assert stored.scheduled_at - stored.created_at == timedelta(seconds=30)


def test_apply_async_eta_is_the_scheduled_time(row):
    eta = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    assert row(tasks.add.apply_async(args=(1, 2), eta=eta)).scheduled_at == eta


def test_apply_async_naive_eta_is_read_in_the_current_time_zone(row):
    eta = datetime(2099, 1, 1, 12, 0)
    assert row(tasks.add.apply_async(args=(1, 2), eta=eta)).scheduled_at == \
        timezone.make_aware(eta)


def test_apply_async_past_eta_runs_now(row):
    stored = row(tasks.add.apply_async(args=(1, 2), eta=timezone.now() - timedelta(days=1)))
    assert stored.scheduled_at == stored.created_at


def test_apply_async_expires_counts_from_the_scheduled_time(row):
    stored = row(tasks.add.apply_async(args=(1, 2), delay=10, expires=3600))
    assert stored.expires_at - stored.scheduled_at == timedelta(seconds=3600)


def test_apply_async_expires_accepts_a_datetime(row):
    when = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    assert row(tasks.add.apply_async(args=(1, 2), expires=when)).expires_at == when


def test_apply_async_depends_on_stores_the_dependency(row):
    first = tasks.noop.delay()
    second = tasks.noop.apply_async(depends_on=[first.id])
    assert row(second).has_dependencies
    assert list(JobDependency.objects.filter(job_id=second.id)
                .values_list("depends_on_id", flat=True)) == [first.id]


def test_apply_async_depends_on_accepts_handles_and_strings(row):
    a, b = tasks.noop.delay(), tasks.noop.delay()
    job = tasks.noop.apply_async(depends_on=[a, str(b.id), a.id])
    assert sorted(job.dependencies) == sorted([a.id, b.id])


def test_apply_async_metadata_reads_back_through_the_handle():
    job = tasks.add.apply_async(args=(1, 2), metadata={"user": 7, "tags": ["x"]})
    assert job.refresh().metadata == {"user": 7, "tags": ["x"]}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": "high"}, TypeError),
        ({"priority": 1.5}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": True}, TypeError),
        ({"delay": -1}, ValueError),
        ({"delay": "soon"}, TypeError),
        ({"eta": "tomorrow"}, TypeError),
        ({"delay": 5, "eta": timezone.now()}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"expires": -1}, ValueError),
        ({"result_ttl": -1}, ValueError),
        ({"queue": 5}, ValueError),
        ({"unique_key": ""}, ValueError),
        ({"unique_key": "k" * 256}, ValueError),
        ({"countdown": 5}, TypeError),
    ],
)
def test_apply_async_bad_option_raises_and_writes_nothing(options, error):
    with pytest.raises(error):
        tasks.add.apply_async(args=(1, 2), **options)
    assert not Job.objects.exists()


# -- defaults: task options, then the queue, then TASKITO -------------------------------------

@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("queue", "configured"),
        ("priority", 7),
        ("max_retries", 4),
        ("timeout_ms", 60_000),
        ("soft_timeout_ms", 30_000),
        ("result_ttl", 120),
    ],
)
def test_delay_uses_task_defaults(row, field, expected):
    assert getattr(row(tasks.configured.delay()), field) == expected


def test_delay_uses_task_default_expires(row):
    stored = row(tasks.configured.delay())
    assert stored.expires_at - stored.scheduled_at == timedelta(seconds=600)


def test_apply_async_uses_task_default_expires(row):
    stored = row(tasks.configured.apply_async(priority=1))
    assert stored.expires_at - stored.scheduled_at == timedelta(seconds=600)


def test_apply_async_options_override_task_defaults(row):
    stored = row(tasks.configured.apply_async(priority=1, queue="other", max_retries=0,
                                              timeout=5))
    assert (stored.priority, stored.queue, stored.max_retries, stored.timeout_ms) == \
        (1, "other", 0, 5000)


def test_apply_async_keeps_task_defaults_not_overridden(row):
    stored = row(tasks.configured.apply_async(priority=1))
    assert (stored.queue, stored.max_retries, stored.timeout_ms) == ("configured", 4, 60_000)


def test_delay_without_task_options_uses_taskito_settings(row):
    stored = row(tasks.add.delay(1, 2))
    assert (stored.queue, stored.priority, stored.max_retries, stored.timeout_ms) == \
        ("default", 0, 3, 300_000)


def test_delay_follows_overridden_taskito_settings(row):
    tasks.add.delay(1, 2)  # resolve (and cache) the defaults first
    settings = {"DEFAULT_QUEUE": "elsewhere", "DEFAULT_PRIORITY": 2, "DEFAULT_MAX_RETRIES": 9,
                "DEFAULT_TIMEOUT": 12}
    with override_settings(TASKITO=settings):
        stored = row(tasks.add.delay(1, 2))
    assert (stored.queue, stored.priority, stored.max_retries, stored.timeout_ms) == \
        ("elsewhere", 2, 9, 12_000)


def test_queue_keyword_defaults_apply_to_its_jobs(row):
    q = Queue(default_queue="mine", default_priority=4, default_max_retries=1,
              default_timeout=None)
    stored = row(q.enqueue(tasks.add.name, (1, 2)))
    assert (stored.queue, stored.priority, stored.max_retries, stored.timeout_ms) == \
        ("mine", 4, 1, None)


def test_enqueue_by_name_of_an_unregistered_task_is_allowed(row):
    # the producer may not import the worker's tasks; the worker decides
    assert row(tasks.add.queue.enqueue("elsewhere.task", args=(1,))).task_name == "elsewhere.task"


@pytest.mark.parametrize("name", ["", None, 5])
def test_enqueue_rejects_a_bad_task_name(queue, name):
    with pytest.raises(ValueError, match="task name"):
        queue.enqueue(name)


# -- JSON only ---------------------------------------------------------------------------------

def test_delay_non_json_argument_raises_naming_it_and_writes_nothing():
    with pytest.raises(SerializationError, match=r"argument 1 of tests\.testapp\.tasks\.add"):
        tasks.add.delay(1, object())
    assert not Job.objects.exists()


def test_delay_non_json_keyword_raises_naming_it_and_writes_nothing():
    with pytest.raises(SerializationError, match="keyword argument 'b'"):
        tasks.add.delay(a=1, b={1, 2})
    assert not Job.objects.exists()


def test_delay_nan_argument_is_refused():
    with pytest.raises(SerializationError, match="argument 0"):
        tasks.add.delay(float("nan"), 1)
    assert not Job.objects.exists()


def test_apply_async_non_json_metadata_is_refused():
    with pytest.raises(SerializationError, match="metadata"):
        tasks.add.apply_async(args=(1, 2), metadata={"when": timezone.now()})
    assert not Job.objects.exists()


# -- map and enqueue_many ----------------------------------------------------------------------

def test_map_enqueues_one_job_per_argument_tuple_in_order(row):
    jobs = tasks.add.map([(i, i) for i in range(5)])
    assert [json.loads(row(j).args) for j in jobs] == [[i, i] for i in range(5)]


def test_map_applies_options_to_every_job():
    tasks.add.map([(1, 1), (2, 2)], priority=5, queue="processing")
    assert set(Job.objects.values_list("priority", "queue")) == {(5, "processing")}


def test_enqueue_many_stores_kwargs_list(queue, row):
    jobs = queue.enqueue_many(tasks.echo.name, [(1,), ()], kwargs_list=[{"a": 1}, None])
    assert [(json.loads(row(j).args), json.loads(row(j).kwargs)) for j in jobs] == \
        [([1], {"a": 1}), ([], {})]


def test_enqueue_many_uses_task_defaults(queue):
    queue.enqueue_many(tasks.send_email.name, [("a@x",), ("b@x",)])
    assert set(Job.objects.values_list("queue", "priority")) == {("emails", 3)}


def test_enqueue_many_kwargs_list_length_mismatch_raises_and_writes_nothing(queue):
    with pytest.raises(ValueError, match="kwargs_list has 1 entries, args_list 2"):
        queue.enqueue_many(tasks.add.name, [(1, 2), (3, 4)], kwargs_list=[{}])
    assert not Job.objects.exists()


def test_map_non_json_argument_raises_naming_it_and_writes_nothing():
    with pytest.raises(SerializationError, match="argument 1 of"):
        tasks.add.map([(1, 2), (3, object()), (5, 6)])
    assert not Job.objects.exists()


def test_map_of_nothing_returns_nothing():
    assert tasks.add.map([]) == []


def test_map_with_depends_on_links_every_job(queue):
    first = tasks.noop.delay()
    jobs = tasks.noop.map([(), ()], depends_on=[first])
    assert all(j.dependencies == [first.id] for j in jobs)


# -- transactions --------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_rolled_back_atomic_leaves_no_job():
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.delay(1, 2)
        assert Job.objects.count() == 1
        raise RuntimeError("roll back")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_map_inside_rolled_back_atomic_leaves_no_job():
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.map([(1, 2), (3, 4)])
        raise RuntimeError("roll back")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_committed_atomic_keeps_the_job():
    with transaction.atomic():
        job = tasks.add.delay(1, 2)
    assert Job.objects.filter(id=job.id).exists()


# -- query budgets -------------------------------------------------------------------------------

def test_delay_costs_one_query(count_queries):
    tasks.add.delay(0, 0)  # warm the per-task defaults
    with count_queries() as log:
        tasks.add.delay(1, 2)
    assert len(log) == 1, log


def test_apply_async_with_options_costs_one_query(count_queries):
    with count_queries() as log:
        tasks.add.apply_async(args=(1, 2), priority=3, delay=5, metadata={"a": 1})
    assert len(log) == 1, log


def test_map_costs_a_constant_number_of_queries(count_queries):
    with count_queries() as ten:
        tasks.add.map([(i, i) for i in range(10)])
    with count_queries() as hundred:
        jobs = tasks.add.map([(i, i) for i in range(100)])
    assert len(jobs) == 100
    assert len(hundred) == len(ten) <= 3, hundred
