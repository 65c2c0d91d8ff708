"""A real `taskito_worker` process runs Django tasks it was never told about: it imports them
by module path, retries them, dead-letters them and sends the framework's signals."""

from __future__ import annotations

import json

import pytest

from taskito.models import DeadLetter
from tests.backends.framework import TaskResultStatus
from tests.testapp import django_tasks as t

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def test_worker_process_runs_retries_and_fails_django_tasks(start_worker):
    results = {
        "sum": t.async_add.enqueue(2, 3),
        "flaky": t.flaky.enqueue(1),
        "dead": t.always_fails.enqueue("nope"),
        "context": t.get_task_id.enqueue(),
        "later": t.noop_task.using(priority=-100).enqueue(),
    }

    proc = start_worker("--burst", "--concurrency", "2")
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    got = {name: r.task.get_result(r.id) for name, r in results.items()}
    assert got["sum"].return_value == 5
    assert (got["flaky"].status, got["flaky"].return_value, got["flaky"].attempts) == \
        (TaskResultStatus.SUCCESSFUL, 2, 2)
    assert [e.exception_class for e in got["flaky"].errors] == [t.Boom]
    assert (got["dead"].status, len(got["dead"].errors)) == (TaskResultStatus.FAILED, 2)
    assert DeadLetter.objects.get().task_name == t.always_fails.module_path
    assert got["context"].return_value == results["context"].id
    assert got["later"].status == TaskResultStatus.SUCCESSFUL
    assert all(len(r.worker_ids[-1]) > len("unknown") for r in got.values())


def test_worker_process_sends_task_started_and_finished(start_worker, tmp_path):
    log = tmp_path / "signals.jsonl"
    result = t.record_signals.enqueue(str(log))

    proc = start_worker("--burst")
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["signal"], e["status"], e["attempts"], e["errors"]) for e in lines] == [
        ("started", "RUNNING", 1, 0),
        ("finished", "READY", 1, 1),
        ("started", "RUNNING", 2, 1),
        ("finished", "SUCCESSFUL", 2, 1),
    ]
    assert {e["id"] for e in lines} == {result.id}
