"""taskito.testing: test mode runs enqueued jobs at once (real rows, retries without
sleeping), run_jobs steps ready jobs in the test's thread, and the enqueue assertions say
what was enqueued instead."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.request import urlopen

import pytest
from django.db import connection, transaction
from django.test import LiveServerTestCase, TestCase, override_settings
from django.utils import timezone

from taskito import MaxRetriesExceededError, TaskNotRegistered, queue
from taskito.models import DeadLetter, Job, JobError, TaskMetric
from taskito.testing import assert_enqueued, assert_not_enqueued, enqueued_jobs, run_jobs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


# -- test mode -------------------------------------------------------------------------------------

def test_test_mode_runs_delay_at_once_and_collects_the_handles():
    with queue.test_mode() as ran:
        job = tasks.add.delay(1, 2)
        assert job.status == "complete" and job.result(timeout=1) == 3
    assert [r.id for r in ran] == [job.id]
    assert queue.stats()["completed"] == 1 and TaskMetric.objects.count() == 1


def test_test_mode_runs_apply_async_map_enqueue_and_enqueue_many():
    with queue.test_mode() as ran:
        a = tasks.add.apply_async(args=(2, 3), delay=3600, priority=4)  # delay: runs anyway
        many = tasks.add.map([(1, 1), (2, 2)])
        b = queue.enqueue(tasks.add.name, args=(5, 5))
        more = queue.enqueue_many(tasks.add, [(0, 1)], kwargs_list=None)
    assert [j.result(timeout=1) for j in [a, *many, b, *more]] == [5, 2, 4, 10, 1]
    assert len(ran) == 5


def test_test_mode_retries_at_once_as_the_worker_would():
    with queue.test_mode():
        job = tasks.fails_first_attempt.delay()
        dead = tasks.always_fails.delay("nope")
    assert job.result(timeout=1) == 1 and job.retry_count == 1
    assert dead.status == "dead" and JobError.objects.filter(job_id=dead.id).count() == 3
    with pytest.raises(MaxRetriesExceededError, match="nope"):
        dead.result(timeout=1)
    assert DeadLetter.objects.filter(original_job_id=dead.id).count() == 1


def test_test_mode_propagate_errors_raises_the_task_exception_from_delay():
    with queue.test_mode(propagate_errors=True), pytest.raises(tasks.Retryable, match="boom"):
        tasks.always_fails.delay()
    (job,) = enqueued_jobs(tasks.always_fails)
    assert job.status == "dead" and job.retry_count == 2


def test_test_mode_propagate_errors_leaves_a_job_that_recovered_alone():
    with queue.test_mode(propagate_errors=True):
        assert tasks.fails_first_attempt.delay().result(timeout=1) == 1


def test_test_mode_without_propagate_keeps_the_error_on_the_job():
    with queue.test_mode():
        job = tasks.fatal.delay()
    assert job.status == "dead" and "not worth retrying" in job.error


def test_test_mode_unknown_task_with_propagate_raises():
    with queue.test_mode(propagate_errors=True), pytest.raises(Exception,
                                                                match="no task named"):
        queue.enqueue("nobody.knows.this")
    with queue.test_mode():
        assert queue.enqueue("nobody.knows.this").status == "dead"


def test_test_mode_inside_atomic_rolls_back_with_it():
    with queue.test_mode() as ran, pytest.raises(RuntimeError), transaction.atomic():
        assert tasks.add.delay(1, 1).result(timeout=1) == 2
        raise RuntimeError("roll back")
    assert len(ran) == 1 and not Job.objects.exists()


def test_test_mode_runs_a_job_enqueued_by_a_task_too():
    with queue.test_mode() as ran:
        job = tasks.enqueues_add.delay(3, 4)
    assert job.result(timeout=1) == 7
    assert [r.task_name for r in ran] == [tasks.add.name, tasks.enqueues_add.name]


def test_test_mode_unique_duplicate_does_not_run_again():
    with queue.test_mode() as ran:
        holder = tasks.noop.apply_async(unique_key="k", delay=0)
        jobs = tasks.unique_by_args.map([(1,), (1,), (2,)])
    assert holder.status == "complete" and len(ran) == 3
    assert [j.status for j in jobs] == ["complete"] * 3 and jobs[0].id == jobs[1].id


def test_test_mode_job_waiting_on_a_pending_dependency_stays_pending():
    parent = tasks.noop.delay()
    with queue.test_mode():
        child = tasks.noop.apply_async(depends_on=[parent.id])
    assert child.status == "pending"
    run_jobs()
    assert child.refresh().status == "complete"


def test_test_mode_ends_with_its_block():
    with queue.test_mode():
        pass
    assert tasks.add.delay(1, 1).status == "pending"


def test_test_mode_nests_and_restores_the_outer_one():
    with queue.test_mode() as outer:
        with queue.test_mode(propagate_errors=True), pytest.raises(tasks.Fatal):
            tasks.fatal.delay()
        tasks.fatal.delay()  # the outer one does not propagate
    assert len(outer) == 1


@pytest.mark.django_db(transaction=True)
def test_test_mode_runs_a_job_enqueued_by_another_thread_in_that_thread():
    seen: list[str] = []

    def enqueue() -> None:
        try:
            seen.append(tasks.who_am_i.delay().result(timeout=1)["task"])
        finally:
            connection.close()  # this thread's own connection

    with queue.test_mode() as ran:
        thread = threading.Thread(target=enqueue)
        thread.start()
        thread.join(30)
    assert seen == [tasks.who_am_i.name] and len(ran) == 1


class TestModeInsideDjangoTestCase(TestCase):
    def test_runs_in_the_test_case_transaction(self):
        with queue.test_mode() as ran:
            job = tasks.add.delay(20, 22)
        self.assertEqual(job.result(timeout=1), 42)
        self.assertEqual(len(ran), 1)
        assert_enqueued(tasks.add, args=(20, 22), count=1)

    def test_each_test_starts_empty(self):
        assert_not_enqueued(tasks.add)


@override_settings(ROOT_URLCONF="tests.urls_async_views")
class TestModeWithALiveServer(LiveServerTestCase):
    def test_a_request_served_by_another_thread_runs_its_job_there(self):
        url = f"{self.live_server_url}/enqueue-and-report/?a=4&b=5"
        with queue.test_mode() as ran, urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
        self.assertEqual(body["status"], "complete")
        self.assertEqual([str(r.id) for r in ran], [body["id"]])
        self.assertEqual(ran[0].result(timeout=1), 9)


# -- run_jobs -------------------------------------------------------------------------------------

def test_run_jobs_runs_every_ready_job_in_claim_order():
    low = tasks.add.apply_async(args=(1, 1), priority=1)
    high = tasks.add.apply_async(args=(2, 2), priority=9)
    ran = run_jobs()
    assert [j.id for j in ran] == [high.id, low.id]
    assert [j.status for j in ran] == ["complete", "complete"]
    assert run_jobs() == []


def test_run_jobs_leaves_delayed_jobs_until_now_moves():
    later = tasks.add.apply_async(args=(1, 2), delay=60)
    assert run_jobs() == []
    assert later.refresh().status == "pending"
    (ran,) = run_jobs(now=timezone.now() + timedelta(seconds=61))
    assert ran.id == later.id and ran.result(timeout=1) == 3


def test_run_jobs_runs_retries_as_they_become_due():
    job = tasks.retries_in_a_minute.delay()
    start = timezone.now()
    run_jobs(now=start)
    assert (job.refresh().status, job.retry_count) == ("pending", 1)
    assert run_jobs(now=start + timedelta(seconds=30)) == []
    for minute in (2, 4, 6):
        run_jobs(now=start + timedelta(minutes=minute))
    assert job.refresh().status == "dead" and job.retry_count == 3


def test_run_jobs_runs_immediate_retries_in_the_same_call():
    job = tasks.fails_first_attempt.delay()
    assert [j.id for j in run_jobs()] == [job.id]
    assert job.result(timeout=1) == 1


def test_run_jobs_narrows_by_task_and_queue_and_caps_attempts():
    email = tasks.send_email.delay("a@example.com")
    adds = tasks.add.map([(1, 1), (2, 2), (3, 3)])
    assert [j.id for j in run_jobs(queue="emails")] == [email.id]
    assert [j.id for j in run_jobs(task=tasks.add, max_jobs=2)] == [a.id for a in adds[:2]]
    assert [j.id for j in run_jobs(task=tasks.add.name)] == [adds[2].id]


def test_run_jobs_skips_paused_queues_and_cancels_expired_jobs():
    queue.pause("emails")
    paused = tasks.send_email.delay("a@example.com")
    expired = tasks.add.apply_async(args=(1, 1), expires=10)
    assert run_jobs(now=timezone.now() + timedelta(seconds=11)) == []
    assert (paused.refresh().status, expired.refresh().status) == ("pending", "cancelled")


def test_run_jobs_rejects_a_bad_max_jobs():
    with pytest.raises(ValueError, match="max_jobs"):
        run_jobs(max_jobs=0)


# -- assertions ----------------------------------------------------------------------------------

def test_assert_enqueued_matches_task_arguments_queue_and_count():
    tasks.add.delay(1, 2)
    tasks.add.delay(1, 2)
    tasks.echo.apply_async(args=(1,), kwargs={"k": [1, 2]}, queue="other")
    assert len(assert_enqueued(tasks.add, args=(1, 2), count=2)) == 2
    assert_enqueued("tests.echo", args=[1], kwargs={"k": (1, 2)}, queue="other", count=1)
    assert_enqueued(tasks.add)


def test_assert_enqueued_message_lists_what_was_enqueued_instead():
    tasks.add.delay(3, 4)
    with pytest.raises(AssertionError) as info:
        assert_enqueued(tasks.add, args=(1, 2))
    message = str(info.value)
    assert "expected tests.testapp.tasks.add(1, 2) to be enqueued at least once, found 0" \
        in message
    assert "tests.testapp.tasks.add(3, 4) queue=default status=pending" in message


def test_assert_enqueued_count_mismatch_says_how_many():
    tasks.add.delay(1, 2)
    with pytest.raises(AssertionError, match=r"2 time\(s\), found 1"):
        assert_enqueued(tasks.add, count=2)


def test_assert_enqueued_with_no_job_of_the_task_lists_other_tasks():
    tasks.noop.delay()
    with pytest.raises(AssertionError) as info:
        assert_enqueued(tasks.add)
    assert "No job of tests.testapp.tasks.add; enqueued instead:\n  tests.testapp.tasks.noop" \
        in str(info.value)
    Job.objects.all().delete()
    with pytest.raises(AssertionError, match="Nothing was enqueued"):
        assert_enqueued(tasks.add)


def test_assert_not_enqueued_lists_the_offenders():
    job = tasks.add.delay(5, 6)
    assert_not_enqueued(tasks.add, args=(1, 1))
    assert_not_enqueued(tasks.noop)
    with pytest.raises(AssertionError, match=f"found 1:\n  .*add\\(5, 6\\).*id={job.id}"):
        assert_not_enqueued(tasks.add)


def test_enqueued_jobs_lists_every_status_oldest_first():
    first = tasks.add.delay(1, 1)
    with queue.test_mode():
        second = tasks.add.delay(2, 2)
    third = tasks.send_email.delay("x")
    assert [j.id for j in enqueued_jobs(tasks.add)] == [first.id, second.id]
    assert [j.status for j in enqueued_jobs(tasks.add)] == ["pending", "complete"]
    assert [j.id for j in enqueued_jobs(queue="emails")] == [third.id]
    assert len(enqueued_jobs()) == 3


def test_assertions_refuse_a_bad_task_argument():
    with pytest.raises(TypeError, match="task must be"):
        enqueued_jobs(42)  # type: ignore[arg-type]


def test_unknown_task_is_just_a_name():
    assert enqueued_jobs("never.registered") == []
    with pytest.raises(AssertionError):
        assert_enqueued("never.registered")
    assert TaskNotRegistered  # the name alone never raises here
