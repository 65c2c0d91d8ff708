"""TaskitoRouter options (route selection, dependencies, exported models, OpenAPI) and its
progress stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from taskito.engine import Outcome
from tests.api.conftest import PREFIX
from tests.conftest import UNKNOWN_ID
from tests.helpers.sse import events_in
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def app_with(router):
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(router, prefix="/tasks")
    return app


def test_models_are_exported():
    from taskito.contrib import fastapi as module

    for name in ("StatsResponse", "JobResponse", "JobErrorResponse", "JobResultResponse",
                 "CancelResponse", "DeadLetterResponse", "RetryResponse", "ProgressEvent",
                 "TaskitoRouter"):
        assert name in module.__all__


def test_include_and_exclude_routes(queue):
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter

    only = TestClient(app_with(TaskitoRouter(queue, include_routes=["stats"])))
    assert only.get("/tasks/stats").status_code == 200
    assert only.get("/tasks/health").status_code == 404
    without = TestClient(app_with(TaskitoRouter(queue, exclude_routes={"job_cancel"})))
    assert without.get("/tasks/health").status_code == 200
    assert without.post("/tasks/jobs/x/cancel").status_code in (404, 405)
    with pytest.raises(ValueError, match="nope"):
        TaskitoRouter(queue, include_routes=["nope"])


def test_include_and_exclude_the_progress_route(queue):
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter

    only = TestClient(app_with(TaskitoRouter(queue, include_routes=["job_progress"])))
    assert only.get("/tasks/jobs/x/progress").json() == {"detail": "job x not found"}
    assert only.get("/tasks/stats").status_code == 404
    without = TestClient(app_with(TaskitoRouter(queue, exclude_routes=["job_progress"])))
    assert without.get("/tasks/jobs/x/progress").json() == {"detail": "Not Found"}
    assert without.get("/tasks/jobs/x").json() == {"detail": "job x not found"}


def test_dependencies_guard_every_route(queue):
    from fastapi import Depends, Header, HTTPException
    from fastapi.testclient import TestClient

    from taskito.contrib.endpoints import ROUTES
    from taskito.contrib.fastapi import TaskitoRouter

    def staff_only(x_token: str | None = Header(None)) -> None:
        if x_token != "secret":
            raise HTTPException(status_code=403, detail="forbidden")

    client = TestClient(app_with(TaskitoRouter(queue, dependencies=[Depends(staff_only)])))
    for method, path in ROUTES.values():
        url = "/tasks" + path.format(job_id="x", dead_id="x", workflow_id="x",
                                     task_name="x")
        assert client.request(method, url).status_code == 403, url
    assert client.get("/tasks/stats", headers={"X-Token": "secret"}).status_code == 200


def test_openapi_lists_every_path_with_tags(queue):
    from taskito.contrib.endpoints import ROUTES
    from taskito.contrib.fastapi import TaskitoRouter

    schema = app_with(TaskitoRouter(queue, tags=["jobs"])).openapi()
    assert set(schema["paths"]) == {"/tasks" + path for _, path in ROUTES.values()}
    assert schema["paths"]["/tasks/stats"]["get"]["tags"] == ["jobs"]
    assert "JobResponse" in schema["components"]["schemas"]


def test_openapi_documents_the_progress_stream(queue):
    from taskito.contrib.fastapi import TaskitoRouter

    schema = app_with(TaskitoRouter(queue)).openapi()
    operation = schema["paths"]["/tasks/jobs/{job_id}/progress"]["get"]
    responses = operation["responses"]
    stream = responses["200"]["content"]["text/event-stream"]
    assert stream["schema"]["type"] == "string"
    assert "itemSchema" not in stream  # OpenAPI 3.2: not valid in the 3.1 document
    event = stream["x-event-data"]
    assert event["title"] == "ProgressEvent"
    assert set(event["properties"]) == {"status", "progress", "partial"}
    assert set(responses["200"]["content"]) == {"text/event-stream"}
    for status in ("401", "403", "404", "400"):
        assert set(responses[status]["content"]) == {"application/json"}, status
    [partial] = operation["parameters"][1:]
    assert partial["schema"] == {"type": "boolean", "default": False}


# -- GET /jobs/{job_id}/progress ----------------------------------------------------------------
def progress_url(job_id: Any) -> str:
    return f"{PREFIX}/jobs/{job_id}/progress"


@pytest.fixture
def fast_stream(settings, monkeypatch):
    """Poll every 10 ms and send a keep-alive on every unchanged poll: a stream then yields
    a line every few milliseconds, which is what lets `sse()` keep its deadline."""
    settings.TASKITO = {**settings.TASKITO, "SSE_POLL_INTERVAL": 0.01}
    monkeypatch.setattr("taskito.contrib.fastapi.KEEP_ALIVE", 0.0)


def sse(response, timeout: float = 10.0) -> Iterator[Any]:
    """A stream's events as {"id", "data"} and its comments as strings, until it ends; fails
    once `timeout` seconds have passed."""
    for item in events_in(response.iter_lines(), timeout):
        if isinstance(item, str):
            yield item
        else:
            assert item.fields == {"id", "data"}, item
            yield {"id": item.id, "data": item.data}


def next_event(stream: Iterator[Any]) -> dict[str, Any]:
    """The next event's data, past any keep-alive."""
    return next(item["data"] for item in stream if isinstance(item, dict))


def rest(stream: Iterator[Any]) -> list[dict[str, Any]]:
    """The data of the remaining events (the stream must end)."""
    return [item["data"] for item in stream if isinstance(item, dict)]


def read_all(response, timeout: float = 10.0) -> bytes:
    """The whole body of a stream that must end within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    chunks = []
    for chunk in response.iter_bytes():
        assert time.monotonic() < deadline, "the stream ran past its deadline"
        chunks.append(chunk)
    return b"".join(chunks)


def test_progress_of_a_completed_job_is_one_event(fastapi_client, completed_job, fast_stream):
    job = completed_job()
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "private, no-cache"
        assert response.headers["vary"] == "Cookie, Authorization"
        assert response.headers["x-accel-buffering"] == "no"
        body = read_all(response)
    assert body == b'id: 1\ndata: {"status": "complete", "progress": 100}\n\n'


def test_progress_of_a_dead_job_is_one_event(fastapi_client, dead_job, fast_stream):
    with fastapi_client.stream("GET", progress_url(dead_job().id)) as response:
        assert [item["data"] for item in sse(response)] == [
            {"status": "dead", "progress": 0}]


@pytest.mark.parametrize("job_id", [str(UNKNOWN_ID), "not-a-uuid"])
def test_progress_of_an_unknown_job_is_404_before_streaming(fastapi_client, job_id):
    response = fastapi_client.get(progress_url(job_id))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": f"job {job_id} not found"}


def test_progress_streams_every_change_until_terminal(engine, fastapi_client, queue, fast_stream):
    job = tasks.noop.apply_async(queue="watched")
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        stream = sse(response)
        assert next_event(stream) == {"status": "pending", "progress": 0}
        [claimed] = engine.claim(worker_id="stream-test", limit=1, queues=["watched"])
        assert next_event(stream) == {"status": "running", "progress": 0}
        engine.set_progress(claimed.id, claimed.token, 40)
        assert next_event(stream) == {"status": "running", "progress": 40}
        engine.finish([Outcome(claimed, "complete", wall_ms=1.0, result="null")])
        assert rest(stream) == [{"status": "complete", "progress": 100}]


def test_progress_carries_partial_results_only_when_asked(engine, fastapi_client, queue,
                                                          fast_stream):
    job = tasks.noop.apply_async(queue="watched")
    [claimed] = engine.claim(worker_id="stream-test", limit=1, queues=["watched"])
    engine.set_progress(claimed.id, claimed.token, 30, partial=["first row"])
    with fastapi_client.stream("GET", progress_url(job.id) + "?partial=1") as response:
        stream = sse(response)
        assert next_event(stream) == {"status": "running", "progress": 30,
                                      "partial": ["first row"]}
        engine.set_progress(claimed.id, claimed.token, 30, partial=["first row", "second"])
        assert next_event(stream) == {"status": "running", "progress": 30,
                                      "partial": ["first row", "second"]}
        engine.finish([Outcome(claimed, "complete", wall_ms=1.0, result="null")])
        assert rest(stream) == [{"status": "complete", "progress": 100,
                                 "partial": ["first row", "second"]}]
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        assert rest(sse(response)) == [{"status": "complete", "progress": 100}]
    response = fastapi_client.get(progress_url(job.id) + "?partial=maybe")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("partial must be true or false")


def test_progress_event_ids_count_up(engine, fastapi_client, queue, fast_stream):
    job = tasks.noop.apply_async(queue="watched")
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        stream = sse(response)
        ids = [next(item["id"] for item in stream if isinstance(item, dict))]
        [claimed] = engine.claim(worker_id="stream-test", limit=1, queues=["watched"])
        engine.finish([Outcome(claimed, "complete", wall_ms=1.0, result="null")])
        ids += [item["id"] for item in stream if isinstance(item, dict)]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 2


def test_progress_follows_a_worker_to_completion(fastapi_client, worker, fast_stream):
    job = tasks.reports.apply_async(args=(4,))
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        stream = sse(response)
        events = [next_event(stream)]
        assert worker.run_until_empty() == 1
        events += rest(stream)
    assert events[0] == {"status": "pending", "progress": 0}
    assert events[-1] == {"status": "complete", "progress": 100}
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress)


def test_progress_stream_sends_keep_alives_while_nothing_changes(fastapi_client,
                                                                  fast_stream):
    job = tasks.noop.apply_async(queue="watched")
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        stream = sse(response)
        assert next(stream)["data"] == {"status": "pending", "progress": 0}
        assert next(stream) == ": keep-alive"


def test_progress_stream_ends_when_the_job_is_purged(fastapi_client, queue, fast_stream):
    job = tasks.noop.apply_async(queue="watched")
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        stream = sse(response)
        assert next_event(stream)["status"] == "pending"
        assert queue.purge_jobs([job.id]) == 1
        assert rest(stream) == []


def test_progress_stream_stops_when_the_client_leaves(fastapi_client, monkeypatch,
                                                      fast_stream):
    from taskito.contrib import fastapi as module

    closed: list[bool] = []
    original = module._progress_stream

    async def tracked(*args: Any) -> Any:
        try:
            async for chunk in original(*args):
                yield chunk
        finally:
            closed.append(True)

    monkeypatch.setattr(module, "_progress_stream", tracked)
    job = tasks.noop.apply_async(queue="watched")
    with fastapi_client.stream("GET", progress_url(job.id)) as response:
        assert next_event(sse(response))["status"] == "pending"
        assert closed == []
    # leaving the block disconnects; TestClient waits for the app, so the stream is over
    assert closed == [True]


def test_progress_stream_ends_when_an_asgi_2_4_server_reports_a_disconnect(queue,
                                                                            fast_stream):
    """Servers of ASGI spec 2.4 never cancel a stream: it asks `is_disconnected()` itself."""
    import anyio

    from taskito.contrib.fastapi import TaskitoRouter

    app = app_with(TaskitoRouter(queue))
    job = tasks.noop.apply_async(queue="watched")
    path = progress_url(job.id)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if any(message.get("body") for message in sent):
            return {"type": "http.disconnect"}  # the client left after the first event
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [], "server": ("testserver", 80), "client": ("testclient", 1)}

    async def serve() -> None:
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(serve)
    bodies = [message["body"] for message in sent if message["type"] == "http.response.body"]
    assert bodies == [b'id: 1\ndata: {"status": "pending", "progress": 0}\n\n', b""]
