"""PostgreSQL through PgBouncer in transaction pooling mode: worker processes connect through
a PgBouncer the test starts; either they poll for jobs (no TASKITO["LISTEN_DATABASE"]) or
LISTEN on a direct alias. Exactly-once under load, SIGKILL chaos, and the system check."""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count

from taskito.models import Job
from taskito.states import JobStatus
from tests.conftest import child_env, manage, wait_for
from tests.helpers.pgbouncer import PgBouncer, start_pgbouncer
from tests.process.conftest import Spawn
from tests.process.helpers import Proc, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

JOBS = 10_000
POLLING_WARNING = "polling for jobs instead of LISTEN"


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: PgBouncer")
    settings = connection.settings_dict
    started = start_pgbouncer(upstream=settings["HOST"] or "127.0.0.1",
                              upstream_port=int(settings["PORT"] or 5432))
    yield started
    started.stop()


class Via:
    """How a child process reaches the database: through `bouncer`, LISTENing on a direct
    alias or not."""

    def __init__(self, bouncer: PgBouncer, listen: bool) -> None:
        self.bouncer, self.listen = bouncer, listen

    def env(self, **overrides: Any) -> dict[str, str]:
        env = {"TASKITO_TEST_DB_PORT": str(self.bouncer.port)}
        if self.listen:
            env["TASKITO_TEST_DIRECT_ALIAS"] = "listen"
            overrides["LISTEN_DATABASE"] = "listen"
        env["TASKITO_TEST_OVERRIDES"] = json.dumps(overrides)
        return env

    def check(self, proc: Proc) -> None:
        """The worker polled exactly when it had no direct alias to LISTEN on."""
        assert (POLLING_WARNING in proc.stderr) is not self.listen, proc.describe()


@pytest.fixture(params=["polling", "listen-database"])
def via(request: pytest.FixtureRequest, bouncer: PgBouncer) -> Via:
    return Via(bouncer, request.param == "listen-database")


def test_four_workers_through_pgbouncer_run_ten_thousand_jobs_exactly_once(
        spawn: Spawn, via: Via, executions: None):
    tasks.count_execution.map([(str(i),) for i in range(JOBS)])
    workers = [spawn(f"w{i}", worker_argv("--burst", "--worker-id", f"w{i}"), **via.env())
               for i in range(4)]
    for w in workers:
        assert w.wait(timeout=300) == 0, w.describe()
        via.check(w)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT tag) FROM taskito_test_executions")
        assert cursor.fetchone() == (JOBS, JOBS)
    assert not Job.objects.filter(status__in=[0, 1]).exists()
    per_worker = dict(Job.objects.values_list("worker_id").annotate(n=Count("id")))
    assert set(per_worker) <= {"w0", "w1", "w2", "w3"}, per_worker


def _executions(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_sigkill_chaos_through_pgbouncer_loses_no_job(spawn: Spawn, via: Via, tmp_path: Path):
    out = tmp_path / "executions.txt"
    n = 1000
    tasks.record_slow.map([(str(out), str(i), 0.004) for i in range(n)])
    env = via.env(HEARTBEAT_INTERVAL=0.2, WORKER_STALE_AFTER=1.0)

    def start(name: str) -> Proc:
        return spawn(name, worker_argv("--worker-id", name, "--concurrency", "4"), **env)

    workers = {f"w{i}": start(f"w{i}") for i in range(3)}
    rng = random.Random(11)
    for kill in range(1, 3):
        done_before = len(_executions(out))
        wait_for(lambda b=done_before: len(_executions(out)) >= b + 150, timeout=60)
        victim = rng.choice(sorted(workers))
        workers[victim].popen.kill()
        workers[victim].popen.wait()
        workers[victim] = start(f"{victim}-r{kill}")
    wait_for(lambda: not Job.objects.filter(status__in=[0, 1]).exists(), timeout=120)
    counts = _executions(out)
    assert set(counts) == {str(i) for i in range(n)}  # nothing lost
    assert Job.objects.filter(status=JobStatus.COMPLETE).count() == n
    assert sum(c - 1 for c in counts.values()) <= 2 * (4 + 64)  # only the killed in-flight
    for proc in workers.values():
        wait_for(lambda p=proc: "taskito worker" in p.stdout, timeout=30)
        proc.popen.terminate()
        assert proc.wait(timeout=30) == 0, proc.describe()
        via.check(proc)


def _check(env: dict[str, str]) -> str:
    done = subprocess.run(manage("check", "--database", "default", "--database", "listen",
                                 "--fail-level", "ERROR"),
                          env=child_env(TASKITO_TEST_DIRECT_ALIAS="listen", **env),
                          capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


def test_check_warns_when_listen_would_go_through_pgbouncer(bouncer: PgBouncer):
    through = {"TASKITO_TEST_DB_PORT": str(bouncer.port)}
    assert "taskito.W003" in _check(through)
    listen = {"TASKITO_TEST_OVERRIDES": json.dumps({"LISTEN_DATABASE": "listen"})}
    assert "taskito.W003" not in _check({**through, **listen})
    assert "taskito.W003" not in _check({})  # a direct connection


WAIT_FOR_RESULTS = """
from tests.testapp.tasks import add
for i in range(20):
    assert add.delay(i, 1).result(timeout=30) == i + 1
print("results ok")
"""


def test_producer_through_pgbouncer_waits_for_results(spawn: Spawn, via: Via):
    """enqueue + JobResult.result() from a process whose connections go through PgBouncer:
    its wait LISTENs on the direct alias, or polls."""
    worker = spawn("w", worker_argv("--worker-id", "w", "--concurrency", "2"), **via.env())
    producer = spawn("producer", manage("shell", "-c", WAIT_FOR_RESULTS), **via.env())
    assert producer.wait(timeout=120) == 0, producer.describe() + worker.describe()
    assert "results ok" in producer.stdout
    worker.popen.terminate()
    assert worker.wait(timeout=30) == 0, worker.describe()
    via.check(worker)
