"""Async code: `aenqueue` takes a Task like `enqueue`, and a JobResult has async twins
(`arefresh`, `ato_dict`, `acancel`, `aerrors`, `alogs`, `adependencies`, `adependents`)."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import SynchronousOnlyOperation

from taskito.result import JobResult
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_and_enqueue_many_accept_a_task_object(queue):
    job = queue.enqueue(tasks.add, args=(1, 2))
    many = queue.enqueue_many(tasks.add, [(1, 1), (2, 2)])
    assert {j.refresh().task_name for j in [job, *many]} == {tasks.add.name}


def test_aenqueue_accepts_a_task_object(queue, worker):
    async def main() -> JobResult:
        return await queue.aenqueue(tasks.add, args=(2, 3), priority=4)

    job = asyncio.run(main())
    assert job.refresh().task_name == tasks.add.name
    assert job.to_dict()["priority"] == 4
    worker.run_until_empty()
    assert job.result(timeout=1) == 5


def test_aenqueue_many_accepts_a_task_object(queue):
    jobs = asyncio.run(queue.aenqueue_many(tasks.add, [(1, 1), (2, 2)]))
    assert [j.refresh().task_name for j in jobs] == [tasks.add.name] * 2


def test_a_handle_in_async_code_reads_its_row_through_arefresh(queue, completed_job):
    done = completed_job(2, 3)

    async def main() -> tuple[str, dict]:
        job = await queue.aenqueue(tasks.add, args=(1, 1))
        with pytest.raises(SynchronousOnlyOperation):
            job.status  # noqa: B018 - the sync read is refused in async code
        fresh = await job.arefresh()
        other = JobResult(queue, done.id)
        return fresh.status, await other.ato_dict()

    status, as_dict = asyncio.run(main())
    assert status == "pending"
    assert as_dict == done.to_dict()
    assert as_dict["status"] == "complete"


def test_acancel_cancels_a_pending_job(queue):
    job = tasks.noop.delay()
    assert asyncio.run(job.acancel()) is True
    assert asyncio.run(job.acancel()) is False
    assert job.refresh().status == "cancelled"


def test_aerrors_and_alogs_return_what_the_properties_return(worker):
    failed = tasks.always_fails.delay()
    logged = tasks.reports.delay(2)
    worker.run_until_empty()

    assert asyncio.run(failed.aerrors()) == failed.errors
    assert len(failed.errors) == 3
    assert asyncio.run(logged.alogs()) == logged.logs
    assert logged.logs


def test_adependencies_and_adependents(queue):
    first = tasks.noop.delay()
    second = tasks.noop.apply_async(depends_on=[first.id])
    assert asyncio.run(second.adependencies()) == [first.id]
    assert asyncio.run(first.adependents()) == [second.id]


@pytest.mark.parametrize("name", ["arefresh", "ato_dict", "acancel", "aerrors", "alogs",
                                  "adependencies", "adependents"])
def test_every_async_twin_is_a_documented_coroutine_function(name):
    twin = getattr(JobResult, name)
    assert asyncio.iscoroutinefunction(twin)
    assert twin.__name__ == name
    assert twin.__doc__ == f"Async twin of `{name[1:]}`."


# -- enqueue from async code: adelay, aapply_async, amap -------------------------------------

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_adelay_aapply_async_amap_from_an_async_test(queue):
    job = await tasks.add.adelay(1, 2)
    other = await tasks.add.aapply_async(args=(3, 4), priority=5, queue="q")
    many = await tasks.add.amap([(1, 1), (2, 2)], priority=1)
    await job.arefresh()
    await other.arefresh()
    assert (job.status, job.task_name) == ("pending", tasks.add.name)
    assert (await other.ato_dict())["priority"] == 5 and other.queue_name == "q"
    assert len({j.id for j in many}) == 2
    assert await queue.astats() == {"pending": 4, "running": 0, "completed": 0, "failed": 0,
                                    "dead": 0, "cancelled": 0}


@pytest.mark.anyio
async def test_delay_on_the_event_loop_is_refused_and_adelay_is_the_way():
    with pytest.raises(SynchronousOnlyOperation):
        tasks.add.delay(1, 2)
    assert (await tasks.add.adelay(1, 2)).id is not None


@pytest.mark.urls("tests.urls_async_views")
@pytest.mark.anyio
async def test_adelay_and_amap_from_an_asgi_view(async_client, queue):
    response = await async_client.get("/enqueue/?a=2&b=5")
    assert response.status_code == 200
    body = response.json()
    job = await queue.aget_job(body["id"])
    assert job is not None and job.task_name == tasks.add.name
    assert (await queue.astats())["pending"] == 3
    assert len(body["many"]) == 2


@pytest.mark.urls("tests.urls_async_views")
@pytest.mark.anyio
async def test_delay_in_an_asgi_view_raises_synchronous_only_operation(async_client):
    with pytest.raises(SynchronousOnlyOperation):
        await async_client.get("/enqueue-sync/")
