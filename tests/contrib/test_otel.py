"""taskito.contrib.otel in this process (steppable worker, SDK in-memory exporter): the
trace context travels in the job's metadata, each attempt is a consumer span under it with
its attributes, failures are recorded (tests/process/test_tracing.py crosses processes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from taskito.contrib.otel import CARRIER_KEY, OpenTelemetryMiddleware, outcome
from taskito.exceptions import TaskCancelledError
from taskito.middleware import TaskContext
from taskito.runtime.worker import Worker
from tests.helpers.otel import as_dict, in_memory_provider
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def traced(settings) -> Iterator[Any]:
    """(tracer, finished spans as dicts): the middleware on every task, on a provider of
    this test's own."""
    provider, exporter = in_memory_provider()
    middleware = OpenTelemetryMiddleware(tracer_provider=provider)
    with override_settings(TASKITO={**settings.TASKITO, "MIDDLEWARE": [middleware]}):
        yield provider.get_tracer("tests"), lambda: [as_dict(s)
                                                     for s in exporter.get_finished_spans()]
    provider.shutdown()


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_the_attempt_is_a_consumer_span_under_the_enqueue_under_the_caller(traced, worker):
    tracer, spans = traced
    with tracer.start_as_current_span("request") as request:
        job = tasks.add.apply_async((2, 3), queue="q")
    worker.run_until_empty()
    assert job.result(timeout=1) == 5
    (parent,) = named(spans(), "request")
    (send,) = named(spans(), f"send {tasks.add.name}")
    (run,) = named(spans(), f"process {tasks.add.name}")
    assert parent["span_id"] == f"{request.get_span_context().span_id:016x}"
    assert (send["kind"], send["parent_span_id"], send["trace_id"]) == (
        "PRODUCER", parent["span_id"], parent["trace_id"])
    assert (run["kind"], run["parent_span_id"], run["trace_id"]) == (
        "CONSUMER", send["span_id"], parent["trace_id"])
    assert run["attributes"] == {
        "messaging.system": "taskito", "messaging.operation.type": "process",
        "messaging.destination.name": "q", "messaging.message.id": str(job.id),
        "taskito.task_name": tasks.add.name, "taskito.job_id": str(job.id),
        "taskito.queue": "q", "taskito.attempt": 1, "taskito.retry_count": 0,
        "taskito.outcome": "complete"}
    assert run["status"] == "UNSET" and run["events"] == []
    assert send["attributes"]["messaging.destination.name"] == "q"


def test_the_context_is_kept_in_the_metadata_beside_the_callers_keys(traced, worker):
    tracer, spans = traced
    with tracer.start_as_current_span("request"):
        job = tasks.add.apply_async((1, 1), metadata={"tenant": "acme"})
    job.refresh()
    (send,) = named(spans(), f"send {tasks.add.name}")
    assert job.metadata.keys() == {"tenant", CARRIER_KEY}
    assert job.metadata["tenant"] == "acme"
    traceparent = job.metadata[CARRIER_KEY]["traceparent"]
    assert traceparent.startswith(f"00-{send['trace_id']}-{send['span_id']}-")  # then flags


def test_metadata_that_is_not_a_dict_is_left_alone_and_the_attempt_is_a_root(traced, worker):
    tracer, spans = traced
    with tracer.start_as_current_span("request"):
        job = tasks.add.apply_async((1, 1), metadata=["not", "a", "dict"])
    worker.run_until_empty()
    assert job.refresh().metadata == ["not", "a", "dict"]
    (run,) = named(spans(), f"process {tasks.add.name}")
    assert run["parent_span_id"] is None
    assert named(spans(), f"send {tasks.add.name}") == []


def test_enqueued_outside_any_span_the_send_span_is_the_root(traced, worker):
    _, spans = traced
    tasks.add.delay(1, 1)
    worker.run_until_empty()
    (send,) = named(spans(), f"send {tasks.add.name}")
    (run,) = named(spans(), f"process {tasks.add.name}")
    assert send["parent_span_id"] is None
    assert (run["parent_span_id"], run["trace_id"]) == (send["span_id"], send["trace_id"])


def test_without_producer_spans_the_attempt_is_a_child_of_the_caller(settings, worker):
    provider, exporter = in_memory_provider()
    middleware = OpenTelemetryMiddleware(tracer_provider=provider, producer_spans=False)
    with override_settings(TASKITO={**settings.TASKITO, "MIDDLEWARE": [middleware]}):
        with provider.get_tracer("tests").start_as_current_span("request") as request:
            tasks.add.delay(1, 1)
        plain = tasks.add.delay(2, 2)  # no current span: nothing to carry
        worker.run_until_empty()
    spans = [as_dict(s) for s in exporter.get_finished_spans()]
    assert [s["name"] for s in spans].count(f"process {tasks.add.name}") == 2
    parents = {s["parent_span_id"] for s in spans if s["name"].startswith("process")}
    assert parents == {f"{request.get_span_context().span_id:016x}", None}
    assert plain.refresh().metadata is None


def test_a_failing_attempt_records_its_error_and_each_retry_is_a_span(traced, worker):
    tracer, spans = traced
    with tracer.start_as_current_span("request"):
        job = tasks.always_fails.delay("no luck")
    worker.run_until_empty()
    assert job.refresh().status == "dead"
    (send,) = named(spans(), f"send {tasks.always_fails.name}")
    runs = named(spans(), f"process {tasks.always_fails.name}")
    assert [(r["attributes"]["taskito.attempt"], r["attributes"]["taskito.retry_count"],
             r["attributes"]["taskito.outcome"]) for r in runs] == [
        (1, 0, "retry"), (2, 1, "retry"), (3, 2, "dead")]
    for run in runs:
        assert run["parent_span_id"] == send["span_id"]
        assert (run["status"], run["description"]) == ("ERROR", "Retryable: no luck")
        assert run["events"] == ["exception"]


def test_an_error_not_worth_retrying_ends_the_job_dead_at_once(traced, worker):
    _, spans = traced
    tasks.fatal.delay()
    worker.run_until_empty()
    (run,) = named(spans(), f"process {tasks.fatal.name}")
    assert run["attributes"]["taskito.outcome"] == "dead"
    assert run["status"] == "ERROR"


def test_the_attempts_span_is_current_while_the_task_runs(traced, worker):
    _, spans = traced
    job = tasks.current_span.delay()
    worker.run_until_empty()
    (run,) = named(spans(), f"process {tasks.current_span.name}")
    assert job.result(timeout=1) == f"{run['trace_id']}-{run['span_id']}"


@pytest.mark.django_db(transaction=True)
def test_a_hard_timeout_ends_the_span_once_with_the_timeout(traced, queue):
    _, spans = traced
    tasks.overruns.delay(0.6)
    Worker(queue, concurrency=1, burst=True, poll_interval=0.001).run()
    (run,) = named(spans(), f"process {tasks.overruns.name}")
    assert run["attributes"]["taskito.outcome"] == "dead"
    assert (run["status"], run["events"]) == ("ERROR", ["exception"])
    assert run["description"].startswith("TaskTimeoutError")


def context(**overrides: Any) -> TaskContext:
    values: dict[str, Any] = {"job_id": "j", "task_name": tasks.always_fails.name, "queue": "q",
                              "args": [], "kwargs": {}, "attempt": 1, "retry_count": 0,
                              "max_retries": 2}
    return TaskContext(**{**values, **overrides})


def test_outcome_follows_the_tasks_retry_policy():
    retryable = tasks.Retryable("x")
    assert outcome(context(), None) == "complete"
    assert outcome(context(), retryable) == "retry"
    assert outcome(context(retry_count=2), retryable) == "dead"
    assert outcome(context(task_name=tasks.fatal.name, max_retries=5), tasks.Fatal()) == "dead"
    assert outcome(context(task_name="no.such.task"), retryable) == "dead"
    mine = TaskCancelledError("cancelled")
    mine.job_id = "j"
    assert outcome(context(), mine) == "cancelled"
    assert outcome(context(), TaskCancelledError("another job's")) == "retry"
