"""`async def` tasks in real worker processes: concurrency reached, drain on SIGTERM, and
`--pool process`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.process.conftest import Spawn
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def wait_for_count(directory: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(os.listdir(directory)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(os.listdir(directory))} of {count} in {timeout} s")
        time.sleep(0.02)


def test_200_coroutines_run_at_once_on_two_threads(spawn: Spawn, tmp_path: Path):
    marks = tmp_path / "running"
    marks.mkdir()
    jobs = tasks.async_rendezvous.map([(str(marks), 200)] * 200)
    worker = spawn("w", worker_argv("--concurrency", "2", "--async-concurrency", "200",
                                    "--burst"))
    assert worker.wait(timeout=120) == 0, worker.describe()
    assert [job.result(timeout=1) for job in jobs] == [200] * 200
    assert "200 coroutines on one event loop" in worker.stdout


def test_sigterm_drains_running_coroutines(spawn: Spawn, tmp_path: Path):
    started = tmp_path / "started"
    started.mkdir()
    release = tmp_path / "release"
    jobs = tasks.async_waits_for_file.map([(str(started), str(release))] * 10)
    worker = spawn("w", worker_argv("--concurrency", "1", "--drain-timeout", "60"))
    wait_for_count(started, 10)
    worker.popen.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # still draining: it waits for the coroutines
    assert worker.returncode is None
    release.touch()
    assert worker.wait(timeout=60) == 0, worker.describe()
    assert [job.result(timeout=1) for job in jobs] == ["released"] * 10


def test_sigterm_drain_timeout_puts_coroutines_back(spawn: Spawn, tmp_path: Path):
    started = tmp_path / "started"
    started.mkdir()
    jobs = tasks.async_waits_for_file.map([(str(started), str(tmp_path / "never"))] * 5)
    worker = spawn("w", worker_argv("--concurrency", "1", "--drain-timeout", "0.5"))
    wait_for_count(started, 5)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 1, worker.describe()
    assert {job.refresh().status for job in jobs} == {"pending"}


def test_process_pool_runs_async_tasks_in_the_children(spawn: Spawn):
    jobs = tasks.async_add.map([(i, i) for i in range(10)])
    worker = spawn("w", worker_argv("--pool", "process", "--concurrency", "1", "--burst"))
    assert worker.wait(timeout=120) == 0, worker.describe()
    assert [job.result(timeout=1) for job in jobs] == [2 * i for i in range(10)]
