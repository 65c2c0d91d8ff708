"""`async def` tasks on the worker's event loop: Worker.run in a thread, real database."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def gate() -> Iterator[tasks.AsyncGate]:
    tasks.ASYNC_GATE = gate = tasks.AsyncGate()
    yield gate
    gate.release()  # never leave a task waiting


@pytest.fixture
def running(queue) -> Iterator[Callable[..., Worker]]:
    """running(**options): a Worker.run() in a thread, stopped and joined afterwards."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(**options) -> Worker:
        worker = Worker(queue, poll_interval=0.005, **options)

        def target() -> None:
            try:
                worker.run()
            finally:
                connections.close_all()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(30)


def test_async_tasks_run_concurrently_beyond_the_threads(queue, gate, running):
    jobs = tasks.await_gate.map([()] * 200)
    running(concurrency=2, async_concurrency=200)
    wait_until(lambda: gate.running == 200)
    assert gate.peak == 200
    gate.release()
    results = {job.result(timeout=20) for job in jobs}
    assert results == {"taskito-aio"}  # all on the one loop thread


def test_async_concurrency_caps_coroutines_in_flight(queue, gate, running):
    jobs = tasks.await_gate.map([()] * 30)
    running(concurrency=2, async_concurrency=10)
    wait_until(lambda: gate.running == 10)
    time.sleep(0.2)  # give a wrongly uncapped loop the chance to start more
    assert gate.peak == 10
    gate.release()
    for job in jobs:
        job.result(timeout=20)
    assert gate.peak == 10


def test_sync_and_async_tasks_share_one_worker(queue, gate, running):
    waiting = tasks.await_gate.map([()] * 20)
    running(concurrency=2, async_concurrency=50)
    wait_until(lambda: gate.running == 20)
    sync_jobs = tasks.add.map([(i, i) for i in range(30)])
    # the coroutines hold no thread: sync jobs finish while they all still wait
    assert [job.result(timeout=20) for job in sync_jobs] == [2 * i for i in range(30)]
    assert gate.running == 20
    gate.release()
    assert all(job.result(timeout=20) == "taskito-aio" for job in waiting)


def test_async_hard_timeout_cancels_the_coroutine(queue, running, tmp_path):
    marker = tmp_path / "cancelled"
    job = tasks.async_sleeps_past_timeout.delay(str(marker))
    running(concurrency=1)
    wait_until(lambda: job.refresh().status == "dead")
    assert "TaskTimeoutError" in (job.error or "")
    wait_until(marker.exists)


def test_cancel_of_a_running_coroutine_cancels_it(queue, running, tmp_path):
    started = tmp_path / "started"
    job = tasks.async_waits_for_cancel.delay(str(started))
    running(concurrency=1)
    wait_until(started.exists)
    assert queue.cancel_running_job(job.id)
    wait_until(lambda: job.refresh().status == "cancelled", timeout=10)


def test_async_failures_retry_then_dead_letter(queue, running):
    job = tasks.async_always_fails.delay()
    running(concurrency=1)
    wait_until(lambda: job.refresh().status == "dead")
    assert len(job.errors) == 3
    assert "async boom" in job.errors[-1]["error"]


def test_async_soft_timeout_raises_in_the_task(queue, running):
    job = tasks.async_soft_timeout.apply_async(args=(0.3,), soft_timeout=0.1)
    running(concurrency=1)
    wait_until(lambda: job.refresh().status == "dead")
    assert "SoftTimeoutError" in (job.error or "")


def test_progress_partial_and_logs_from_a_coroutine(queue, running):
    job = tasks.async_reports.delay(4)
    running(concurrency=1)
    assert job.result(timeout=20) == "done"
    assert job.refresh().progress == 100
    assert [log["message"] for log in job.logs] == [f"async step {i}" for i in range(1, 5)]
    assert queue.job_progress([job.id], partial=True)[job.id][2] == '{"done":4}'


def test_stream_yields_partial_results_until_the_job_ends(queue, running):
    job = tasks.async_reports.delay(5)
    running(concurrency=1)
    seen = list(job.stream(interval=0.01, timeout=20))
    assert seen and seen[-1] == {"done": 5}
    assert all(a["done"] < b["done"] for a, b in itertools.pairwise(seen))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_astream_yields_partial_results_until_the_job_ends(queue, running):
    from asgiref.sync import sync_to_async

    job = await sync_to_async(tasks.async_reports.delay)(5)
    await sync_to_async(running)(concurrency=1)
    seen = [partial async for partial in job.astream(interval=0.01, timeout=20)]
    assert seen[-1] == {"done": 5}
    assert await job.aresult(timeout=20) == "done"


def test_async_orm_inside_a_task(queue, running):
    job = tasks.async_orm.delay("async-orm")
    running(concurrency=1)
    assert job.result(timeout=20) == {"name": "async-orm", "count": 1}


def test_a_coroutine_that_blocks_the_loop_is_logged(queue, running, caplog):
    caplog.set_level(logging.WARNING, logger="taskito.worker")
    job = tasks.async_blocks_loop.delay(1.5)
    running(concurrency=1)
    assert job.result(timeout=20) == "blocked"
    wait_until(lambda: any("was blocked for" in r.getMessage() for r in caplog.records))
    blocked = [r.getMessage() for r in caplog.records if "event loop" in r.getMessage()]
    assert any("task=tests.testapp.tasks.async_blocks_loop" in m for m in blocked), blocked


def test_drain_waits_for_running_coroutines(queue, running, gate):
    jobs = tasks.await_gate.map([()] * 20)
    worker = running(concurrency=1)
    wait_until(lambda: gate.running == 20)
    worker.stop()
    time.sleep(0.1)  # the stopping worker still waits for them
    gate.release()
    assert all(job.result(timeout=20) == "taskito-aio" for job in jobs)


def test_drain_timeout_puts_running_coroutines_back(queue, running, gate):
    jobs = tasks.await_gate.map([()] * 5)
    worker = running(concurrency=1, drain_timeout=0.2)
    wait_until(lambda: gate.running == 5)
    worker.stop()
    wait_until(lambda: queue.stats()["pending"] == 5)
    assert all(job.refresh().status == "pending" for job in jobs)


def test_middleware_runs_around_async_tasks(queue, running):
    from tests.testapp import middleware as mw

    mw.EVENTS.clear()
    job = tasks.async_with_middleware.delay(7)
    running(concurrency=1)
    result = job.result(timeout=20)
    assert result == {"value": 7, "tenant": f"tenant-of-{job.id}", "job": str(job.id)}
    hooks = [(label, hook) for label, hook, _ in mw.EVENTS if hook in ("before", "after")]
    assert hooks == [("async", "before"), ("async", "after")]
    assert [d for _, hook, d in mw.EVENTS if hook == "after"] == [(result, None)]
    mw.EVENTS.clear()


def test_max_concurrent_holds_for_async_tasks(queue, running):
    tasks.LIMITED = gate = tasks.AsyncGate()
    jobs = tasks.async_limited.map([()] * 8)
    running(concurrency=1)
    for job in jobs:
        job.result(timeout=30)
    assert gate.peak == 2


def test_check_cancelled_in_a_coroutine_sees_the_request(queue, running, tmp_path):
    started = tmp_path / "started"
    job = tasks.async_checks_cancel.delay(str(started))
    running(concurrency=1)
    wait_until(started.exists)
    queue.cancel_running_job(job.id)
    wait_until(lambda: job.refresh().status == "cancelled", timeout=10)


def test_run_once_runs_an_async_task_with_progress_and_logs(queue):
    job = tasks.async_reports.delay(3)
    assert Worker(queue).run_once() == 1
    assert job.result(timeout=1) == "done"
    assert job.refresh().progress == 100
    assert len(job.logs) == 3


def test_run_once_cancels_an_async_task_on_request(queue, tmp_path, on_start):
    started = tmp_path / "started"
    job = tasks.async_checks_cancel.delay(str(started))
    on_start(lambda **kw: queue.cancel_running_job(kw["job_id"]))
    assert Worker(queue).run_once() == 1
    assert job.refresh().status == "cancelled"


def test_async_tasks_run_while_every_thread_is_busy(queue, running):
    names = ["busy-1", "busy-2"]
    for name in names:
        tasks.STARTED[name], tasks.GATES[name] = threading.Event(), threading.Event()
    try:
        blocking = [tasks.wait_for_gate.delay(name) for name in names]
        running(concurrency=2)
        assert all(tasks.STARTED[name].wait(10) for name in names)
        # both threads are taken: async jobs still run, on the loop
        coroutines = tasks.async_sleep.map([(0.01,)] * 50)
        assert [job.result(timeout=20) for job in coroutines] == [0.01] * 50
        assert {job.refresh().status for job in blocking} == {"running"}
    finally:
        for name in names:
            tasks.GATES[name].set()
    assert [job.result(timeout=20) for job in blocking] == ["busy-1", "busy-2"]
