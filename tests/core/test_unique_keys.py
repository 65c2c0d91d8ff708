"""unique_key: one active job per key; the key is free again once the job has finished."""

from __future__ import annotations

import pytest

from taskito.models import Job
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
