"""Result waits (`/jobs/{id}/result?timeout=N`) on both surfaces: they hold no thread, wake
when their job ends, answer 404 when it is deleted, give their slot back when cancelled or
when the client leaves, refuse past the cap, and leave no poller (nor its loop) behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from typing import Any

import pytest

from taskito.contrib import endpoints, waits
from tests.api.conftest import PREFIX
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)  # the waits' threads need committed rows


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fastapi_app(queue: Any) -> Any:
    from fastapi import FastAPI

    from taskito.contrib.fastapi import TaskitoRouter

    app = FastAPI()
    app.include_router(TaskitoRouter(queue), prefix=PREFIX)
    return app


@pytest.fixture
async def clients(fastapi_app: Any, staff: Any) -> Any:
    """(get of DRF's ASGI client logged in as staff, get of FastAPI's ASGI client): requests
    served on the test's own loop."""
    import httpx
    from django.test import AsyncClient

    django_client = AsyncClient()
    await django_client.aforce_login(staff)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fastapi_app),
                                 base_url="http://testserver") as fast:
        yield django_client.get, fast.get


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait on the loop until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def held(get: Any, job: Any, n: int = 1) -> list[asyncio.Future[Any]]:
    """`n` result waits of 60 s on `job`, once each has taken its slot."""
    active = waits.slots.active
    pending = [asyncio.ensure_future(get(f"{PREFIX}/jobs/{job.id}/result?timeout=60"))
               for _ in range(n)]
    await until(lambda: waits.slots.active == active + n)
    assert not any(p.done() for p in pending)
    return pending


async def db(fn: Any, *args: Any) -> Any:
    """The test's own database work, off the loop, leaving no connection open behind it."""
    return await endpoints.off_loop(fn, *args)


async def later_job() -> Any:
    return await db(lambda: tasks.add.apply_async(args=(1, 2), delay=3600))


async def answers(pending: list[asyncio.Future[Any]]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*pending), 30)


@pytest.mark.anyio
async def test_50_concurrent_waits_leave_stats_fast(clients, queue):
    """50 waits at once on each surface hold no thread each (the thread count stays flat:
    a thread per wait made the 7th DRF wait queue and FastAPI's /stats take seconds), /stats
    answers meanwhile (best of five well under a second), and cancelling the job wakes them
    all."""
    for get in clients:
        job = await later_job()
        await get(f"{PREFIX}/stats")  # the thread pools exist before the count
        threads = threading.active_count()
        pending = await held(get, job, 50)
        assert threading.active_count() - threads < 20  # a thread per wait (even for its
        # first read only) would add up to 50
        stats = []
        for _ in range(5):
            started = time.monotonic()
            assert (await get(f"{PREFIX}/stats")).status_code == 200
            stats.append(time.monotonic() - started)
        # ~10 ms on an idle machine; the bound is generous for a loaded 2-core CI runner and
        # still far below the seconds a thread per wait cost (the thread count above is the
        # clock-free check)
        assert min(stats) < 0.5, stats
        assert not any(p.done() for p in pending)
        await db(queue.cancel_job, job.id)
        assert {a.json()["status"] for a in await answers(pending)} == {"cancelled"}
        assert waits.slots.active == 0


@pytest.mark.anyio
async def test_waits_past_the_cap_are_503_with_retry_after(clients, queue, settings):
    settings.TASKITO = {**settings.TASKITO, "RESULT_WAIT_LIMIT": 2}
    job = await later_job()
    pending = [*await held(clients[0], job), *await held(clients[1], job)]
    for get in clients:
        refused = await get(f"{PREFIX}/jobs/{job.id}/result?timeout=60")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "result waits" in refused.json()["detail"]
        now = await get(f"{PREFIX}/jobs/{job.id}/result")  # timeout=0 takes no slot
        assert now.status_code == 200
    await db(queue.cancel_job, job.id)  # wakes the held waits
    assert [(a.status_code, a.json()["status"]) for a in await answers(pending)] == [
        (200, "cancelled")] * 2
    assert waits.slots.active == 0


@pytest.mark.anyio
async def test_a_wait_wakes_when_its_job_completes(clients, worker):
    for get in clients:
        job = await db(tasks.add.delay, 2, 3)
        pending = await held(get, job)
        await db(worker.run_until_empty)
        [answer] = await answers(pending)
        assert answer.json() == {"id": str(job.id), "status": "complete", "result": 5,
                                 "error": None}


@pytest.mark.anyio
async def test_a_job_deleted_during_a_wait_answers_404(clients, queue):
    for get in clients:
        job = await later_job()
        pending = await held(get, job)
        await db(queue.job_model.objects.filter(id=job.id).delete)
        [answer] = await answers(pending)
        assert answer.status_code == 404
        assert answer.json() == {"detail": f"job {job.id} not found"}


@pytest.mark.anyio
async def test_a_cancelled_wait_gives_its_slot_back(queue):
    job = await later_job()
    wait = asyncio.ensure_future(waits.until_terminal(queue, job.id, 60, endpoints.off_loop))
    await until(lambda: waits.slots.active == 1)
    wait.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await wait
    assert waits.slots.active == 0
    assert asyncio.get_running_loop() not in waits._pollers


@pytest.mark.anyio
async def test_a_fastapi_client_that_leaves_ends_its_wait(fastapi_app, queue):
    """Starlette does not cancel an endpoint whose client went away: the wait watches for
    the disconnection itself, and gives its slot back at once."""
    job = await later_job()
    left = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent and not left.is_set():
            sent.append({"type": "http.request", "body": b"", "more_body": False})
            return sent[-1]
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = f"{PREFIX}/jobs/{job.id}/result"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"timeout=60", "root_path": "", "headers": [],
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000)}
    request = asyncio.ensure_future(fastapi_app(scope, receive, send))
    await until(lambda: waits.slots.active == 1)
    left.set()
    await asyncio.wait_for(request, 10)  # long before the 60 s timeout
    assert waits.slots.active == 0


def test_waits_leave_no_poller_or_loop_behind(queue, api):
    """Under WSGI each request runs its async view on a new event loop: neither the loop nor
    its poller may outlive the wait."""
    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    for _ in range(3):
        assert asyncio.run(waits.until_terminal(queue, job.id, 0.05, endpoints.off_loop))
        response = api.get(f"{PREFIX}/jobs/{job.id}/result?timeout=0.05")
        assert response.json()["status"] == "pending"
    gc.collect()
    assert len(waits._pollers) == 0
