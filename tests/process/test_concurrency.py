"""Many processes on one database at once: producers, workers, and unique keys."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from taskito.models import Job
from taskito.states import JobStatus
from tests.conftest import wait_for
from tests.process.helpers import Proc, module_argv, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

PRODUCERS = 4
PER_PRODUCER = 250


def _start_together(spawn, barrier: Path, name: str, argvs: list[list[str]],
                    **env: str) -> list[Proc]:
    """Start processes that wait at `barrier` (see tests.process.enqueue); release them at
    once when all are ready."""
    barrier.mkdir()
    procs = [spawn(f"{name}{i}", argv, **env) for i, argv in enumerate(argvs)]

    def all_ready() -> bool:
        for proc in procs:
            assert proc.popen.poll() is None or proc.popen.returncode == 0, proc.describe()
        return len(list(barrier.glob("ready-*"))) == len(procs)

    wait_for(all_ready, timeout=60)
    (barrier / "go").touch()
    return procs


IMMEDIATE = "tests.settings"
DEFERRED = "tests.process.settings_deferred"  # SQLite's default, what W001 warns about


@pytest.mark.parametrize(("settings_module", "chain"), [
    pytest.param(IMMEDIATE, False, id="IMMEDIATE"),
    pytest.param(DEFERRED, False, id="DEFERRED"),
    pytest.param(IMMEDIATE, True, id="IMMEDIATE-depends_on"),
    # Regression: enqueue(depends_on=...) used to read before writing in its transaction,
    # which a deferred SQLite transaction cannot do under concurrent writers.
    pytest.param(DEFERRED, True, id="DEFERRED-depends_on"),
])
def test_sqlite_producers_and_workers_share_one_file(spawn, tmp_path, settings_module, chain):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: several processes writing one database file")
    out = tmp_path / "executions.txt"
    env = {"DJANGO_SETTINGS_MODULE": settings_module}
    workers = [spawn(f"worker{i}", worker_argv("--concurrency", "4", "--worker-id", f"w{i}"),
                     **env) for i in range(2)]
    producers = _start_together(spawn, tmp_path / "barrier", "producer", [
        module_argv("tests.process.enqueue", "record", "--tag", f"p{i}", "--count",
                    str(PER_PRODUCER), "--path", str(out), "--barrier", str(tmp_path / "barrier"),
                    *(["--chain"] if chain else []))
        for i in range(PRODUCERS)], **env)

    for proc in producers:
        assert proc.wait(timeout=60) == 0, proc.describe()
        assert "locked" not in proc.stderr.lower(), proc.describe()
    total = PRODUCERS * PER_PRODUCER
    wait_for(lambda: Job.objects.filter(status=JobStatus.COMPLETE).count() == total,
             timeout=60)
    for proc in workers:  # one may have done all the work before the other finished starting
        wait_for(lambda p=proc: "taskito worker" in p.stdout, timeout=30)
        proc.popen.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(timeout=30) == 0, proc.describe()
        assert "locked" not in proc.stderr.lower(), proc.describe()

    enqueued = [line for proc in producers for line in proc.stdout.split()]
    assert len(set(enqueued)) == total
    lines = Counter(out.read_text().split())
    expected = {f"p{p}-{i}" for p in range(PRODUCERS) for i in range(PER_PRODUCER)}
    assert set(lines) == expected
    assert [v for v, n in lines.items() if n != 1] == []
    assert Job.objects.count() == total
    assert Job.objects.exclude(attempts=1).count() == 0
    # every job was run by one of the two workers (one may take them all: a worker claims
    # up to ~64 short jobs at a time, so which one wins is timing, not correctness)
    assert set(Job.objects.values_list("worker_id", flat=True)) <= {"w0", "w1"}


def test_unique_key_under_concurrent_callers(spawn, tmp_path):
    key = "process-test-unique"
    procs = _start_together(spawn, tmp_path / "barrier", "caller", [
        module_argv("tests.process.enqueue", "unique", "--key", key, "--count", "50",
                    "--barrier", str(tmp_path / "barrier"))
        for _ in range(8)])

    answers: list[list[str]] = []
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.describe()
        assert "locked" not in proc.stderr.lower(), proc.describe()
        answers.extend(line.split() for line in proc.stdout.splitlines())

    assert len(answers) == 8 * 50
    ids = {job_id for job_id, _created in answers}
    assert len(ids) == 1, ids
    assert sum(created == "True" for _id, created in answers) == 1
    active = Job.objects.filter(unique_key=key, status__in=[0, 1])
    assert [str(i) for i in active.values_list("id", flat=True)] == list(ids)
    assert Job.objects.filter(unique_key=key).count() == 1


def test_workers_share_the_load_and_run_each_job_once(spawn, tmp_path):
    out = tmp_path / "executions.txt"
    workers = [spawn(f"worker{i}", worker_argv("--worker-id", f"w{i}")) for i in range(3)]
    wait_for(lambda: all("taskito worker" in w.stdout or w.popen.poll() is not None
                         for w in workers), timeout=30)
    values = [f"v{i}" for i in range(1500)]
    for start in range(0, len(values), 100):
        tasks.record.map([(str(out), v) for v in values[start:start + 100]])

    wait_for(lambda: Job.objects.filter(status=JobStatus.COMPLETE).count() == len(values),
             timeout=60)
    for proc in workers:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(timeout=30) == 0, proc.describe()
        assert "locked" not in proc.stderr.lower(), proc.describe()

    lines = Counter(out.read_text().split())
    assert set(lines) == set(values)
    assert [v for v, n in lines.items() if n != 1] == []
    assert Job.objects.exclude(attempts=1).count() == 0
    assert len(set(Job.objects.values_list("worker_id", flat=True))) >= 2


def test_unique_key_while_a_worker_frees_it(spawn, tmp_path):
    """The key changes hands as the worker completes its holders: every caller still gets an
    id, each id is a real job, and exactly one caller created each of them."""
    key = "process-test-unique-churn"
    worker = spawn("worker", worker_argv())
    # up and handling signals before the callers start (a SIGTERM during Django's start-up
    # would simply kill it)
    wait_for(lambda: "taskito worker" in worker.stdout or worker.popen.poll() is not None,
             timeout=30)
    assert worker.popen.poll() is None, worker.describe()
    procs = _start_together(spawn, tmp_path / "barrier", "caller", [
        module_argv("tests.process.enqueue", "unique", "--key", key, "--count", "100",
                    "--barrier", str(tmp_path / "barrier"))
        for _ in range(4)])

    answers: list[list[str]] = []
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.describe()
        answers.extend(line.split() for line in proc.stdout.splitlines())
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.describe()

    assert len(answers) == 4 * 100
    returned = {job_id for job_id, _created in answers}
    created = Counter(job_id for job_id, was_created in answers if was_created == "True")
    rows = {str(i) for i in Job.objects.filter(unique_key=key).values_list("id", flat=True)}
    assert returned == rows == set(created)
    assert set(created.values()) == {1}
    assert Job.objects.filter(unique_key=key, status__in=[0, 1]).count() <= 1
