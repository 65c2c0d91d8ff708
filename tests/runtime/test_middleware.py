"""TaskMiddleware: global (TASKITO["MIDDLEWARE"]) then per-task hooks around each attempt,
`after` in reverse; on_enqueue may rewrite options or refuse; a hook that raises is logged
with the job id and changes no outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from taskito import TaskContext, TaskMiddleware, queue
from taskito.exceptions import ConfigurationError, TaskFailedError
from taskito.models import DeadLetter, Job, TaskMetric
from taskito.registry import build_spec
from taskito.runtime.executor import Executor
from tests.testapp import middleware as mw
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

GLOBAL = "tests.testapp.middleware.First"


@pytest.fixture(autouse=True)
def events() -> Iterator[list]:
    mw.EVENTS.clear()
    yield mw.EVENTS
    mw.EVENTS.clear()


def hooks(events, *names):
    return [(label, hook) for label, hook, _ in events if not names or hook in names]


def test_before_runs_global_then_per_task_and_after_in_reverse(events, worker):
    with override_settings(TASKITO={"MIDDLEWARE": [GLOBAL]}):
        job = tasks.with_middleware.delay(5)
        worker.run_until_empty()
    assert job.result(timeout=1) == 5
    assert hooks(events) == [
        ("first", "on_enqueue"), ("task", "on_enqueue"), ("second", "on_enqueue"),
        ("first", "before"), ("task", "before"), ("second", "before"),
        ("second", "after"), ("task", "after"), ("first", "after")]
    assert [detail for _, hook, detail in events if hook == "after"] == [(5, None)] * 3


def test_before_and_after_share_a_context_that_describes_the_attempt(events, worker):
    job = tasks.with_middleware.apply_async(args=("v",), kwargs={"fail": False},
                                            metadata={"who": "me"}, queue="q")
    worker.run_until_empty()
    ctx = next(detail for label, hook, detail in events if hook == "before")
    assert isinstance(ctx, TaskContext)
    assert (ctx.job_id, ctx.task_name, ctx.queue, ctx.args, ctx.kwargs, ctx.attempt,
            ctx.retry_count, ctx.metadata) == (job.id, tasks.with_middleware.name, "q",
                                               ("v",), {"fail": False}, 1, 0, {"who": "me"})


def test_a_global_middleware_runs_for_every_task(events, worker):
    with override_settings(TASKITO={"MIDDLEWARE": [GLOBAL]}):
        tasks.add.delay(1, 2)
        worker.run_until_empty()
    assert hooks(events) == [("first", "on_enqueue"), ("first", "before"), ("first", "after")]


def test_no_middleware_calls_no_hook(events, worker):
    tasks.add.delay(1, 2)
    worker.run_until_empty()
    assert events == []


def test_after_and_on_retry_see_the_exception_then_on_dead_letter(events, worker):
    job = tasks.with_middleware.delay("x", fail=True)
    worker.run_until_empty()
    assert job.refresh().status == "dead"
    assert hooks(events, "on_retry", "on_dead_letter") == [
        ("task", "on_retry"), ("second", "on_retry"),
        ("task", "on_dead_letter"), ("second", "on_dead_letter")]
    error, retry_count = next(d for _, hook, d in events if hook == "on_retry")
    assert isinstance(error, tasks.Retryable) and retry_count == 1
    _, after_error = next(d for _, hook, d in events if hook == "after")
    assert isinstance(after_error, tasks.Retryable)


def test_on_cancel_when_a_running_job_stops_for_its_cancel_request(events, worker):
    spec = build_spec(tasks.cancellable.spec.func, name=tasks.cancellable.name,
                      max_retries=0, middleware=[mw.Recorder("c")])
    registry_swap = _swap(spec)
    try:
        job = tasks.cancellable.delay()
        claimed = worker.engine.claim(worker_id="w", limit=1)
        queue.cancel_running_job(job.id)
        worker.engine.finish([Executor(queue, manage_connections=False)(claimed[0])])
    finally:
        registry_swap()
    assert job.refresh().status == "cancelled"
    assert hooks(events, "on_cancel") == [("c", "on_cancel")]


def test_on_timeout_then_the_retry_policy(events, worker):
    with override_settings(TASKITO={"MIDDLEWARE": [GLOBAL]}):
        job = tasks.overruns.delay(0)
        (claimed,) = worker.engine.claim(worker_id="w", limit=1)
        outcome = Executor(queue).timed_out(claimed, time.perf_counter() - 1)
        worker.engine.finish([outcome])
    assert job.refresh().status == "dead"
    assert hooks(events, "on_timeout", "on_dead_letter") == [("first", "on_timeout"),
                                                             ("first", "on_dead_letter")]


def test_outcome_hooks_without_the_exception_object_get_a_task_failed_error(events, worker):
    with override_settings(TASKITO={"MIDDLEWARE": [GLOBAL]}):
        tasks.noop.delay()
        worker.engine.claim(worker_id="gone", limit=1)
        assert worker.engine.rescue_lost_jobs(stale_after=0) == 1
    error, retry_count = next(d for _, hook, d in events if hook == "on_retry")
    assert isinstance(error, TaskFailedError) and "worker lost" in str(error)
    assert retry_count == 1


# -- a raising middleware changes nothing ---------------------------------------------------------

def test_raising_middleware_changes_no_outcome_and_is_logged_with_the_job_id(worker, caplog):
    caplog.set_level(logging.ERROR, logger="taskito.middleware")
    with override_settings(TASKITO={"MIDDLEWARE": ["tests.testapp.middleware.Raising"]}):
        ok = tasks.progress_then_read.delay(7)
        retried = tasks.fails_first_attempt.delay()
        dead = tasks.fatal.delay()
        assert worker.run_until_empty() == 4
    assert ok.result(timeout=1) == 7 and retried.result(timeout=1) == 1
    assert dead.refresh().status == "dead"
    assert DeadLetter.objects.count() == 1 and TaskMetric.objects.count() == 4
    logged = " ".join(r.getMessage() for r in caplog.records)
    for job, hook in ((ok, "before"), (ok, "after"), (retried, "on_retry"),
                      (dead, "on_dead_letter")):
        assert f"hook={hook} job={job.id}" in logged
    assert "middleware exploded" in logged


def test_a_failing_hook_does_not_stop_the_others(events, worker):
    spec = build_spec(tasks.add.spec.func, name=tasks.add.name,
                      middleware=[mw.Raising(), mw.Recorder("after-raising")])
    restore = _swap(spec)
    try:
        job = tasks.add.delay(2, 2)
        worker.run_until_empty()
    finally:
        restore()
    assert job.result(timeout=1) == 4
    assert hooks(events, "before", "after") == [("after-raising", "before"),
                                                ("after-raising", "after")]


# -- on_enqueue ------------------------------------------------------------------------------------

@override_settings(TASKITO={"MIDDLEWARE": ["tests.testapp.middleware.Urgent"]})
def test_on_enqueue_may_change_options_of_delay_apply_async_and_map():
    one = tasks.echo.delay("plain")
    two = tasks.echo.apply_async(args=("keyed",), priority=1)
    again = tasks.echo.delay("keyed")
    many = tasks.echo.map([("a",), ("keyed",)])
    rows = {r.id: r for r in Job.objects.all()}
    assert {(r.queue, r.priority, r.metadata) for r in rows.values()} == {
        ("urgent", 9, '{"tenant":"acme"}')}
    assert rows[two.id].unique_key == "from-middleware"
    assert again.id == two.id and many[1].id == two.id and not many[1].created
    assert len(rows) == 3 and one.id in rows


@override_settings(TASKITO={"MIDDLEWARE": ["tests.testapp.middleware.Refuse"]})
def test_on_enqueue_raising_refuses_the_enqueue_and_writes_nothing():
    with pytest.raises(PermissionError, match="may not be enqueued"):
        tasks.add.delay(1, 2)
    with pytest.raises(PermissionError):
        tasks.add.map([(1, 2), (3, 4)])
    assert not Job.objects.exists()


def test_on_enqueue_gets_the_call_and_a_copy_of_its_options(events):
    tasks.with_middleware.apply_async(args=(1,), kwargs={"fail": False}, priority=3,
                                      unique_key="k")
    (name, args, kwargs, options) = next(d for _, hook, d in events if hook == "on_enqueue")
    assert (name, args, kwargs, options) == (tasks.with_middleware.name, (1,),
                                             {"fail": False}, {"priority": 3, "unique_key": "k"})


# -- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, message", [
    ("tests.testapp.middleware.Missing", "cannot import"),
    ("tests.testapp.middleware.NotMiddleware", "is not a taskito.TaskMiddleware"),
    (42, "give dotted paths"),
])
def test_system_check_reports_a_bad_middleware_entry(entry, message):
    with override_settings(TASKITO={"MIDDLEWARE": [entry]}):
        errors = [e for e in run_checks() if e.id == "taskito.E004"]
    assert len(errors) == 1 and message in errors[0].msg


def test_system_check_accepts_good_middleware():
    with override_settings(TASKITO={"MIDDLEWARE": [GLOBAL, "tests.testapp.middleware.Urgent"]}):
        assert not [e for e in run_checks() if e.id.startswith("taskito.E")]


def test_middleware_setting_must_be_a_list():
    with override_settings(TASKITO={"MIDDLEWARE": "tests.testapp.middleware.First"}):
        assert [e.id for e in run_checks() if e.id.startswith("taskito.E")] == ["taskito.E001"]


@pytest.mark.parametrize("value", [["no.such.Middleware"], [mw.NotMiddleware], [object()], "x"])
def test_task_middleware_option_is_checked_at_decoration(value):
    with pytest.raises(ConfigurationError, match="middleware"):
        build_spec(lambda: None, name="t", middleware=value)


def test_task_middleware_option_takes_classes_instances_and_paths():
    spec = build_spec(lambda: None, name="t", middleware=[
        mw.First, mw.Second(), "tests.testapp.middleware.Recorder"])
    assert [type(m) for m in spec.middleware] == [mw.First, mw.Second, mw.Recorder]
    assert all(isinstance(m, TaskMiddleware) for m in spec.middleware)


def _swap(spec):
    """Register `spec` in place of the task of the same name; returns the undo."""
    from taskito.registry import registry

    old = registry.find(spec.name)
    registry._tasks[spec.name] = spec

    def restore() -> None:
        registry._tasks[spec.name] = old

    return restore
