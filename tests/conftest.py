"""Shared fixtures: the default queue, a steppable worker, and real worker subprocesses."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from taskito import queue as default_queue
from taskito.engine import Engine
from taskito.queue import Queue
from taskito.result import JobResult
from taskito.runtime.worker import Worker
from tests.helpers.processes import Launcher, Proc
from tests.helpers.signals import SignalCapture
from tests.testapp import tasks

ROOT = Path(__file__).resolve().parent.parent
#: an id that no job or dead letter has; fixed, so that test ids built from it are the same on
#: every collection (`--lf`, re-running one test by id, parallel runners)
UNKNOWN_ID = uuid.UUID("0190f1e5-0000-7000-8000-00000000dead")


@pytest.fixture
def queue() -> Queue:
    return default_queue


@pytest.fixture
def engine(queue: Queue) -> Engine:
    """The worker's verbs (claim, finish, leases, ...) over the default queue's rows."""
    return Engine(queue)


@pytest.fixture
def worker(queue: Queue) -> Worker:
    """A worker for stepping with run_once() in the test's own thread and transaction."""
    return Worker(queue, concurrency=4, worker_id="test-worker")


@pytest.fixture
def vendor() -> str:
    return connection.vendor


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that must use this test run's database."""
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "TASKITO_TEST_CHILD": "1",
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update(extra)
    return env


def manage(*args: str) -> list[str]:
    """argv for `django-admin <args>` run with the tests' settings."""
    return [sys.executable, "-m", "django", *args]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start real `taskito_worker` subprocesses (output in files under tmp_path); whatever
    still runs after the test is killed."""
    launcher = Launcher(tmp_path)
    count = 0

    def start(*args: str) -> Proc:
        nonlocal count
        count += 1
        return launcher.start(f"worker-{count}", manage("taskito_worker", *args), child_env())

    yield start
    launcher.stop()


@pytest.fixture
def capture() -> Iterator[SignalCapture]:
    """`events = capture(signal)`: the keyword arguments of every send until the test ends
    (`capture(signal, shape)` records `shape(sender, kwargs)` instead)."""
    recorder = SignalCapture()
    yield recorder
    recorder.close()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0,
             interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def completed_job(worker: Worker) -> Callable[..., JobResult]:
    """Enqueue `add(a, b)` and run it to completion."""

    def make(a: int = 1, b: int = 2, **options: Any) -> JobResult:
        job = tasks.add.apply_async(args=(a, b), **options)
        worker.run_until_empty()
        assert job.refresh().status == "complete"
        return job

    return make


@pytest.fixture
def dead_job(worker: Worker) -> Callable[..., JobResult]:
    """Enqueue `fatal()` (not retryable) and run it into the dead-letter queue."""

    def make(**options: Any) -> JobResult:
        job = tasks.fatal.apply_async(**options)
        worker.run_until_empty()
        assert job.refresh().status == "dead"
        return job

    return make
