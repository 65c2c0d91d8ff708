"""unique_key: one active job per key; the key is free again once the job has finished."""

from __future__ import annotations

import pytest
from django.db import transaction

from taskito.exceptions import SerializationError
from taskito.models import Job
from taskito.serialization import unique_key_for
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_unique_key_while_pending_returns_the_same_job():
    first = tasks.add.apply_async(args=(1, 2), unique_key="report")
    again = tasks.add.apply_async(args=(3, 4), unique_key="report")
    assert again.id == first.id
    assert Job.objects.count() == 1


def test_unique_key_duplicate_handle_says_it_was_not_created():
    assert tasks.add.apply_async(args=(1, 2), unique_key="report").created is True
    assert tasks.add.apply_async(args=(1, 2), unique_key="report").created is False


def test_unique_key_while_running_returns_the_same_job(running_job):
    job = running_job(unique_key="report")
    assert tasks.noop.apply_async(unique_key="report").id == job.id


def test_unique_key_is_free_once_the_job_completed(completed_job):
    done = completed_job(unique_key="report")
    again = tasks.add.apply_async(args=(1, 2), unique_key="report")
    assert again.id != done.id
    assert again.created


def test_unique_key_is_free_once_the_job_was_cancelled():
    cancelled = tasks.add.apply_async(args=(1, 2), unique_key="report")
    assert cancelled.cancel()
    assert tasks.add.apply_async(args=(1, 2), unique_key="report").id != cancelled.id


def test_unique_key_is_free_once_the_job_is_dead(dead_job):
    dead = dead_job(unique_key="report")
    assert tasks.fatal.apply_async(unique_key="report").id != dead.id


def test_unique_key_different_keys_make_different_jobs():
    a = tasks.add.apply_async(args=(1, 2), unique_key="a")
    b = tasks.add.apply_async(args=(1, 2), unique_key="b")
    assert a.id != b.id


def test_unique_task_same_arguments_share_one_active_job():
    assert tasks.unique_by_args.delay(1).id == tasks.unique_by_args.delay(1).id


def test_unique_task_different_arguments_make_different_jobs():
    assert tasks.unique_by_args.delay(1).id != tasks.unique_by_args.delay(2).id


def test_unique_task_explicit_key_wins_over_the_derived_one():
    job = tasks.unique_by_args.apply_async(args=(1,), unique_key="mine")
    assert Job.objects.get(id=job.id).unique_key == "mine"


# -- unique=True keys are digests of the call ---------------------------------------------------

def test_unique_task_key_is_a_fixed_length_digest_even_for_a_huge_argument():
    big = "x" * 10_000
    first = tasks.unique_by_args.delay(big)
    assert tasks.unique_by_args.delay(big).id == first.id
    key = Job.objects.get(id=first.id).unique_key
    assert len(key) == 64 and int(key, 16) >= 0
    assert tasks.unique_by_args.delay(big + "y").id != first.id


def test_unique_task_key_ignores_keyword_order():
    a = tasks.unique_kwargs.apply_async(kwargs={"a": 1, "b": {"y": 2, "x": 1}})
    b = tasks.unique_kwargs.apply_async(kwargs={"b": {"x": 1, "y": 2}, "a": 1})
    assert a.id == b.id


def test_unique_task_key_names_the_task():
    assert unique_key_for("one", [1], {}) != unique_key_for("two", [1], {})
    assert unique_key_for("one", (1,), None) == unique_key_for("one", [1], {})


def test_unique_task_non_json_argument_names_it():
    with pytest.raises(SerializationError, match="argument 0"):
        tasks.unique_by_args.delay(object())
    assert not Job.objects.exists()


# -- map / enqueue_many ---------------------------------------------------------------------------

def test_map_unique_task_makes_one_job_per_distinct_call():
    jobs = tasks.unique_by_args.map([("z",), ("z",), ("w",)])
    assert Job.objects.count() == 2
    assert jobs[0].id == jobs[1].id != jobs[2].id
    assert [j.created for j in jobs] == [True, False, True]


def test_map_unique_task_returns_the_active_holder_of_a_key():
    holder = tasks.unique_by_args.delay("z")
    jobs = tasks.unique_by_args.map([("z",), ("w",)])
    assert jobs[0].id == holder.id and not jobs[0].created
    assert jobs[1].created and Job.objects.count() == 2


def test_map_unique_key_is_free_again_once_its_holder_finished(completed_job):
    done = completed_job(unique_key="report")
    (job,) = tasks.add.map([(1, 2)], unique_key="report")
    assert job.id != done.id and job.created


def test_enqueue_many_explicit_unique_key_makes_one_active_job(queue):
    jobs = queue.enqueue_many(tasks.add, [(1, 2), (3, 4)], unique_key="nightly")
    again = tasks.add.apply_async(args=(5, 6), unique_key="nightly")
    assert {j.id for j in jobs} == {again.id}
    assert Job.objects.count() == 1


def test_map_unique_costs_one_insert_and_one_look_up_per_batch(count_queries):
    for n in range(5):
        tasks.unique_by_args.delay(n)
    with count_queries() as log:
        jobs = tasks.unique_by_args.map([(n,) for n in range(100)])
    assert len({j.id for j in jobs}) == 100 and Job.objects.count() == 100
    inserts = [sql for sql in log if sql.lstrip().upper().startswith(("INSERT", "WITH"))]
    # the holders' look-up (MariaDB/MySQL: by the generated column of migration 0004)
    lookups = [sql for sql in log if "SELECT unique_key" in sql
               or "SELECT active_unique_key" in sql]
    assert len(inserts) == 1 and len(lookups) == 1


def test_map_unique_rolls_back_with_its_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.unique_by_args.map([(1,), (2,)])
        raise RuntimeError("roll back")
    assert not Job.objects.exists()
    assert len(tasks.unique_by_args.map([(1,), (2,)])) == 2
