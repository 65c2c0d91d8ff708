"""`--pool process`: jobs run in child processes, and a job past its timeout is killed."""

from __future__ import annotations

import pytest

from tests.process.conftest import Spawn
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def test_process_pool_runs_jobs_in_child_processes(spawn: Spawn):
    jobs = tasks.whose_pid.map([()] * 20) + tasks.add.map([(i, i) for i in range(20)])
    worker = spawn("w", worker_argv("--pool", "process", "--concurrency", "2", "--burst"))
    assert worker.wait(timeout=120) == 0, worker.describe()
    pids = {j.result(timeout=1) for j in jobs[:20]}
    assert worker.popen.pid not in pids
    assert 1 <= len(pids) <= 2
    assert [j.result(timeout=1) for j in jobs[20:]] == [2 * i for i in range(20)]
    assert "2 child processes" in worker.stdout


def test_process_pool_kills_a_job_past_its_timeout(spawn: Spawn):
    hung = tasks.hangs.delay()
    after = tasks.add.delay(2, 2)
    worker = spawn("w", worker_argv("--pool", "process", "--concurrency", "1", "--burst"))
    assert worker.wait(timeout=60) == 0, worker.describe()
    hung.refresh()
    assert (hung.status, hung.error) == ("dead", "TaskTimeoutError: timed out after 0.5 s")
    assert after.result(timeout=1) == 4  # the slot got a fresh child process


def test_process_pool_survives_a_child_that_exits(spawn: Spawn):
    job = tasks.exits_hard.delay()
    worker = spawn("w", worker_argv("--pool", "process", "--concurrency", "1", "--burst"))
    assert worker.wait(timeout=60) == 0, worker.describe()
    job.refresh()
    assert job.status == "dead"
    assert [e["attempt"] for e in job.errors] == [1, 2]
    assert "child process died (exit code 3)" in (job.error or "")
