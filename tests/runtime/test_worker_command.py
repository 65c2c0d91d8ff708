"""`taskito_worker` in this process: bad flags are refused before anything runs, and each flag
reaches the worker it starts (the subprocess tests in tests/process cover signals and exits)."""

from __future__ import annotations

import io
import logging
import signal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from taskito.management.commands import taskito_worker
from taskito.models import Job
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def started(monkeypatch) -> list[Worker]:
    """The workers the command starts (real ones, recorded); the command's signal handlers
    are not installed in the test runner's process."""
    workers: list[Worker] = []

    class Recorded(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            workers.append(self)

    monkeypatch.setattr(taskito_worker, "Worker", Recorded)
    monkeypatch.setattr(signal, "signal", lambda sig, handler: None)
    return workers


def worker_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("taskito_worker", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    (["--concurrency", "0"], "--concurrency must be >= 1"),
    (["--max-jobs", "0"], "--max-jobs must be >= 1"),
    (["--poll-interval", "0"], "--poll-interval must be > 0"),
    (["--poll-interval", "-0.5"], "--poll-interval must be > 0"),
    (["--drain-timeout", "-1"], "--drain-timeout must be >= 0"),
    (["--pool", "fork"], "invalid choice: 'fork'"),
    (["--concurrency", "two"], "invalid int value: 'two'"),
    (["--poll-interval", "soon"], "invalid float value: 'soon'"),
], ids=["concurrency-0", "max-jobs-0", "poll-interval-0", "poll-interval-negative",
        "drain-timeout-negative", "pool-unknown", "concurrency-not-int", "poll-interval-text"])
def test_bad_flags_are_refused_before_any_job_is_taken(started, args, message):
    job = tasks.add.delay(1, 2)
    with pytest.raises(CommandError, match=message):
        worker_command("--burst", *args)
    assert started == []
    assert job.refresh().status == "pending"


def test_flags_reach_the_worker(started):
    mine, other = tasks.add.apply_async((1, 2), queue="a"), tasks.add.apply_async((3, 4),
                                                                                   queue="c")
    out, _ = worker_command("--burst", "-Q", "a, b", "--concurrency", "2", "--poll-interval",
                            "0.25", "--worker-id", "cmd-worker", "--drain-timeout", "7",
                            "--max-jobs", "5")
    (worker,) = started
    assert (worker.queues, worker.concurrency, worker.poll_interval, worker.worker_id,
            worker.drain_timeout, worker.max_jobs, worker.burst) == \
        (["a", "b"], 2, 0.25, "cmd-worker", 7.0, 5, True)
    assert (mine.refresh().status, other.refresh().status) == ("complete", "pending")
    assert "taskito worker cmd-worker\n" in out
    assert "queues:      a, b" in out
    assert out.rstrip().endswith("taskito worker cmd-worker stopped after 1 jobs")


def test_poll_interval_defaults_to_the_setting(started, settings):
    settings.TASKITO = {**settings.TASKITO, "POLL_INTERVAL": 0.75}
    worker_command("--burst", "-v", "0")
    assert started[0].poll_interval == 0.75


def test_verbosity_0_prints_nothing(started):
    tasks.add.delay(1, 2)
    out, err = worker_command("--burst", "-v", "0")
    assert (out, err) == ("", "")
    assert Job.objects.get().status_label == "complete"


@pytest.mark.parametrize(("verbosity", "level"), [("0", logging.WARNING), ("1", logging.INFO),
                                                  ("2", logging.DEBUG)])
def test_verbosity_sets_the_taskito_log_level(started, unconfigured, verbosity, level):
    worker_command("--burst", "-v", verbosity)
    assert unconfigured.level == level


def test_verbosity_leaves_a_configured_taskito_logger_alone(started):
    # tests.settings configures the `taskito` logger (WARNING) in LOGGING
    worker_command("--burst", "-v", "2")
    assert logging.getLogger("taskito").level == logging.WARNING
