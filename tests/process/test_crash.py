"""Crash recovery with real worker processes: SIGKILL chaos, a paused (zombie) worker, a job
that kills its worker, and the drain timeout. Short heartbeat and stale times."""

from __future__ import annotations

import json
import os
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from taskito.models import DeadLetter, Job
from taskito.states import JobStatus
from tests.conftest import wait_for
from tests.process.conftest import Spawn
from tests.process.helpers import Proc, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

FAST = {"TASKITO_TEST_OVERRIDES": json.dumps(
    {"HEARTBEAT_INTERVAL": 0.2, "WORKER_STALE_AFTER": 1.0})}


def _spawn_worker(spawn: Spawn, name: str, *args: str) -> Proc:
    return spawn(name, worker_argv("--worker-id", name, *args), **FAST)


def _executions(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_sigkill_chaos_loses_no_job(spawn: Spawn, tmp_path: Path):
    out = tmp_path / "executions.txt"
    n = 2000
    tasks.record_slow.map([(str(out), str(i), 0.004) for i in range(n)])
    workers = {f"w{i}": _spawn_worker(spawn, f"w{i}", "--concurrency", "4") for i in range(3)}
    rng = random.Random(7)
    kills = 0
    restarts = 0
    while kills < 3:
        done_before = len(_executions(out))
        wait_for(lambda b=done_before: len(_executions(out)) >= b + 150, timeout=60)
        victim = rng.choice(sorted(workers))
        workers[victim].popen.kill()
        workers[victim].popen.wait()
        kills += 1
        restarts += 1
        workers[victim] = _spawn_worker(spawn, f"{victim}-r{restarts}", "--concurrency", "4")
    wait_for(lambda: not Job.objects.filter(status__in=[0, 1]).exists(), timeout=120)
    counts = _executions(out)
    assert set(counts) == {str(i) for i in range(n)}  # nothing lost
    assert Job.objects.filter(status=JobStatus.COMPLETE).count() == n
    reruns = sum(c - 1 for c in counts.values())
    # only jobs in flight on a killed worker ran again: at most what 3 workers held at once
    assert reruns <= kills * (4 + 64), reruns
    for proc in workers.values():
        wait_for(lambda p=proc: "taskito worker" in p.stdout, timeout=30)  # signals handled
        proc.popen.terminate()
        assert proc.wait(timeout=30) == 0, proc.describe()


def test_paused_worker_cannot_overwrite_the_rescuer_result(spawn: Spawn, tmp_path: Path):
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    job = tasks.first_attempt_waits.delay(str(started), str(release))
    zombie = _spawn_worker(spawn, "zombie", "--concurrency", "1")
    wait_for(lambda: any(started.iterdir()), timeout=30)
    zombie_pid = zombie.popen.pid
    os.kill(zombie_pid, signal.SIGSTOP)
    try:
        rescuer = _spawn_worker(spawn, "rescuer", "--concurrency", "1")
        assert job.result(timeout=60) != zombie_pid  # the rescuer ran it again
        rescuer_pid = job.result(timeout=1)
    finally:
        release.touch()
        os.kill(zombie_pid, signal.SIGCONT)
    # the zombie's attempt now finishes too, and must write nothing
    wait_for(lambda: "superseded" in zombie.stderr, timeout=30)
    assert job.result(timeout=1) == rescuer_pid
    assert job.refresh().status == "complete"
    for proc in (zombie, rescuer):
        proc.popen.terminate()
        proc.wait(timeout=30)


def test_poison_job_is_dead_lettered_while_normal_jobs_complete(spawn: Spawn, tmp_path: Path):
    poison = tasks.poison.delay()
    normal = tasks.add.map([(i, i) for i in range(500)])
    worker = _spawn_worker(spawn, "p0", "--concurrency", "2")
    restarts = 0

    def settled() -> bool:
        nonlocal worker, restarts
        if worker.popen.poll() is not None:  # killed by the poison job: start another
            restarts += 1
            assert restarts <= 10, "the poison job was retried beyond its max_retries"
            worker = _spawn_worker(spawn, f"p{restarts}", "--concurrency", "2")
        return poison.refresh().status == "dead" and not Job.objects.filter(
            status__in=[0, 1]).exists()

    wait_for(settled, timeout=120, interval=0.1)
    assert restarts == 3  # max_retries=2: three attempts, each killed its worker
    assert DeadLetter.objects.get(original_job_id=poison.id).error.startswith("worker lost")
    assert all(j.result(timeout=1) == 2 * i for i, j in enumerate(normal))
    worker.popen.terminate()
    worker.wait(timeout=30)


def test_drain_timeout_hands_running_jobs_back(spawn: Spawn, tmp_path: Path):
    started, release = tmp_path / "started", tmp_path / "release"
    blocker = tasks.block_until.apply_async(args=(str(release), str(started), 30))
    worker = _spawn_worker(spawn, "drainer", "--concurrency", "1", "--drain-timeout", "0.5")
    wait_for(started.exists, timeout=30)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 1, worker.describe()
    assert "drain timeout" in worker.stderr
    blocker.refresh()
    assert (blocker.status, blocker.retry_count) == ("pending", 0)
    release.touch()
