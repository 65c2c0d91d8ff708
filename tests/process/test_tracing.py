"""taskito.contrib.otel across processes: the test enqueues under a span of its own (SDK,
in-memory exporter), a real worker process (SDK exporting to a file, installed by
tests/settings.py) runs the jobs, and each attempt's span is a child of the enqueue's span in
the test's trace; with `--pool process` the spans come from the child processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from taskito.contrib.otel import OpenTelemetryMiddleware
from tests.helpers.otel import as_dict, in_memory_provider, read_spans
from tests.process.conftest import Spawn
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

MIDDLEWARE = "taskito.contrib.otel.OpenTelemetryMiddleware"


@pytest.fixture
def traced(settings) -> Iterator[Any]:
    provider, exporter = in_memory_provider()
    middleware = OpenTelemetryMiddleware(tracer_provider=provider)
    with override_settings(TASKITO={**settings.TASKITO, "MIDDLEWARE": [middleware]}):
        yield provider.get_tracer("tests"), lambda: [as_dict(s)
                                                     for s in exporter.get_finished_spans()]
    provider.shutdown()


def one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (span,) = [s for s in spans if s["name"] == name]
    return span


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_attempts_in_the_worker_continue_the_enqueuers_trace(traced, spawn: Spawn,
                                                             tmp_path: Path, pool):
    tracer, local_spans = traced
    with tracer.start_as_current_span("request"):
        ok = tasks.add.delay(2, 2)
        failing = tasks.always_fails.delay("worker side")
    spans_file = tmp_path / "spans.jsonl"
    worker = spawn("w", worker_argv("--pool", pool, "--concurrency", "2", "--burst"),
                   TASKITO_TEST_OTEL_SPANS=str(spans_file),
                   TASKITO_TEST_OVERRIDES=json.dumps({"MIDDLEWARE": [MIDDLEWARE]}))
    assert worker.wait(timeout=120) == 0, worker.describe()
    assert ok.result(timeout=1) == 4 and failing.refresh().status == "dead"

    request = one(local_spans(), "request")
    send_ok = one(local_spans(), f"send {tasks.add.name}")
    send_failing = one(local_spans(), f"send {tasks.always_fails.name}")
    remote = read_spans(spans_file)
    assert {s["pid"] == worker.popen.pid for s in remote} == {pool == "thread"}

    run = one(remote, f"process {tasks.add.name}")
    assert (run["kind"], run["trace_id"], run["parent_span_id"]) == (
        "CONSUMER", request["trace_id"], send_ok["span_id"])
    assert send_ok["parent_span_id"] == request["span_id"]
    assert (run["attributes"]["taskito.job_id"], run["attributes"]["taskito.attempt"],
            run["attributes"]["taskito.outcome"], run["status"]) == (
        str(ok.id), 1, "complete", "UNSET")

    runs = sorted((s for s in remote if s["name"] == f"process {tasks.always_fails.name}"),
                  key=lambda s: s["attributes"]["taskito.attempt"])
    assert [(s["attributes"]["taskito.attempt"], s["attributes"]["taskito.outcome"])
            for s in runs] == [(1, "retry"), (2, "retry"), (3, "dead")]
    for span in runs:
        assert (span["trace_id"], span["parent_span_id"]) == (request["trace_id"],
                                                              send_failing["span_id"])
        assert (span["status"], span["description"]) == ("ERROR", "Retryable: worker side")
        assert span["events"] == ["exception"]


def test_a_child_killed_past_its_timeout_leaves_a_span_from_the_worker(traced, spawn: Spawn,
                                                                       tmp_path: Path):
    tracer, local_spans = traced
    with tracer.start_as_current_span("request"):
        hung = tasks.hangs.delay()
    spans_file = tmp_path / "spans.jsonl"
    worker = spawn("w", worker_argv("--pool", "process", "--concurrency", "1", "--burst"),
                   TASKITO_TEST_OTEL_SPANS=str(spans_file),
                   TASKITO_TEST_OVERRIDES=json.dumps({"MIDDLEWARE": [MIDDLEWARE]}))
    assert worker.wait(timeout=120) == 0, worker.describe()
    assert hung.refresh().status == "dead"
    send = one(local_spans(), f"send {tasks.hangs.name}")
    run = one(read_spans(spans_file), f"process {tasks.hangs.name}")
    assert run["pid"] == worker.popen.pid  # the child's span died with it
    assert (run["trace_id"], run["parent_span_id"]) == (send["trace_id"], send["span_id"])
    assert (run["attributes"]["taskito.outcome"], run["status"]) == ("dead", "ERROR")
    assert run["description"].startswith("TaskTimeoutError")
