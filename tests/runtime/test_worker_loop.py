"""Worker.run: the threaded loop (its own threads and connections, so transactional tests)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from taskito.runtime.executor import Executor
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def run_in_thread(worker: Worker) -> tuple[threading.Thread, list[int]]:
    """Start worker.run() in a thread; the list receives its return value."""
    returned: list[int] = []

    def target() -> None:
        try:
            returned.append(worker.run())
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, returned


@pytest.fixture
def gate():
    """A named gate for tasks.wait_for_gate: (started, release) events."""
    name = "gate"
    tasks.STARTED[name], tasks.GATES[name] = threading.Event(), threading.Event()
    yield name, tasks.STARTED[name], tasks.GATES[name]
    tasks.GATES[name].set()  # never leave a task blocked
    del tasks.STARTED[name], tasks.GATES[name]


def test_run_burst_drains_every_ready_job(queue):
    jobs = tasks.add.map([(i, i) for i in range(40)])
    processed = Worker(queue, concurrency=4, burst=True).run()
    assert processed == 40
    assert queue.stats()["completed"] == 40
    assert jobs[7].result(timeout=1) == 14


def test_run_burst_with_nothing_ready_returns_at_once(queue):
    assert Worker(queue, concurrency=2, burst=True).run() == 0


def test_run_burst_retries_until_dead(queue):
    job = tasks.always_fails.delay()  # retry_delays=[0]: due again at once
    Worker(queue, concurrency=2, burst=True).run()
    assert job.refresh().status == "dead"
    assert len(job.errors) == 3


def test_run_max_jobs_stops_after_that_many(queue):
    tasks.noop.map([()] * 10)
    Worker(queue, concurrency=2, max_jobs=3).run()
    assert queue.stats()["completed"] == 3
    assert queue.stats()["pending"] == 7


def test_run_stop_returns_after_in_flight_jobs_finish(queue, gate):
    name, started, release = gate
    job = tasks.wait_for_gate.delay(name)
    worker = Worker(queue, concurrency=2)
    thread, returned = run_in_thread(worker)
    assert started.wait(10)
    worker.stop()
    thread.join(0.2)
    assert thread.is_alive()  # still waiting for the job in flight
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert returned == [1]
    assert job.refresh().status == "complete"


def test_run_stop_claims_nothing_more(queue, gate):
    name, started, release = gate
    tasks.wait_for_gate.delay(name)
    worker = Worker(queue, concurrency=1, prefetch=0)
    thread, _ = run_in_thread(worker)
    assert started.wait(10)
    later = tasks.noop.delay()
    worker.stop()
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert later.refresh().status == "pending"


def test_run_without_burst_waits_for_new_jobs(queue):
    worker = Worker(queue, concurrency=2)
    thread, _ = run_in_thread(worker)
    try:
        job = tasks.add.delay(20, 22)
        assert job.result(timeout=10) == 42
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_run_task_raising_system_exit_is_retried_then_dead(queue):
    # SystemExit is not an Exception: it must still count as a failed attempt, not requeue
    # the job for ever
    crashing = tasks.exits.delay()  # max_retries=1
    fine = tasks.add.delay(1, 1)
    worker = Worker(queue, concurrency=2, burst=True, max_jobs=6)
    thread, _ = run_in_thread(worker)
    thread.join(20)
    assert not thread.is_alive()
    assert fine.refresh().status == "complete"
    assert crashing.refresh().status == "dead"
    assert [e["error"] for e in crashing.errors] == ["SystemExit: 3"] * 2


def crash_first_call(monkeypatch):
    """Make the executor itself crash once (a bug in taskito, not in the task)."""
    original = Executor.__call__
    calls = []

    def crashing(self, job):
        calls.append(job.id)
        if len(calls) == 1:
            raise RuntimeError("executor bug")
        return original(self, job)

    monkeypatch.setattr(Executor, "__call__", crashing)


def test_run_executor_crash_requeues_the_job(queue, monkeypatch):
    crash_first_call(monkeypatch)
    job = tasks.add.delay(2, 2)
    Worker(queue, concurrency=1, burst=True, max_jobs=5).run()
    job.refresh()
    assert (job.status, job.retry_count) == ("complete", 1)
    assert job.errors[0]["error"] == "worker error: RuntimeError('executor bug')"


def test_run_executor_crash_respects_max_retries(queue, monkeypatch):
    def crashing(self, job):
        raise RuntimeError("executor bug")

    monkeypatch.setattr(Executor, "__call__", crashing)
    job = tasks.add.apply_async(args=(2, 2), max_retries=1)
    Worker(queue, concurrency=1, burst=True, max_jobs=5).run()
    assert job.refresh().status == "dead"


# -- what a worker's own writes make ready, it claims without waiting for a watcher ----------
# Its own commits wake none of its watchers (SQLite's data_version counts other connections'
# commits; PostgreSQL's finish notifies result waiters, not workers): with the periodic
# re-check an hour away, these jobs run at once only because a worker looks again after each
# batch it finishes and after each full claim.

def keep_running(worker: Worker, until, timeout: float = 15.0):
    thread, _ = run_in_thread(worker)
    try:
        from tests.conftest import wait_for

        wait_for(until, timeout=timeout)
    finally:
        worker.stop()
        thread.join(timeout=30)


def test_run_claims_a_dependent_as_soon_as_its_dependency_completes(queue):
    first = tasks.noop.delay()
    chain = [first]
    for _ in range(3):
        chain.append(tasks.noop.apply_async(depends_on=[chain[-1].id]))
    worker = Worker(queue, concurrency=2, idle_recheck=3600)
    keep_running(worker, lambda: chain[-1].refresh().status == "complete")
    assert [job.refresh().status for job in chain] == ["complete"] * 4


def test_run_claims_a_retry_due_at_once(queue, tmp_path):
    job = tasks.flaky.delay(str(tmp_path / "count"), 2)  # retry_delays=[0]
    worker = Worker(queue, concurrency=2, idle_recheck=3600)
    keep_running(worker, lambda: job.refresh().status == "complete")
    assert job.result(timeout=1) == 3


def test_run_claims_what_a_screened_claim_left_behind(queue):
    """A full claim whose jobs screening held back (here: an unknown task's) still means more
    may be ready."""
    jobs = []
    for i in range(4):  # in claim order: an unknown task's job, then a runnable one
        queue.enqueue("tests.deployed_later", priority=100 - 2 * i)
        jobs.append(tasks.noop.apply_async(priority=99 - 2 * i))
    worker = Worker(queue, concurrency=1, prefetch=1, idle_recheck=3600)
    keep_running(worker, lambda: all(job.refresh().status == "complete" for job in jobs))


def test_run_burst_returns_once_the_last_job_is_written(queue):
    tasks.add.map([(i, i) for i in range(10)])
    worker = Worker(queue, concurrency=4, burst=True, idle_recheck=3600)
    thread, returned = run_in_thread(worker)
    from tests.conftest import wait_for

    try:
        wait_for(lambda: returned, timeout=15)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert returned == [10]
