"""`GET /workflows/{id}/progress` on both surfaces: {"status", "progress"} events (the share of
finished steps) until the workflow ends; 404 before streaming for an unknown id."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from taskito import chain
from tests.api.conftest import PREFIX
from tests.api.test_fastapi import read_all
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed rows


@pytest.fixture
def fast_stream(settings):
    settings.TASKITO = {**settings.TASKITO, "SSE_POLL_INTERVAL": 0.01}


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.decode().splitlines()
            if line.startswith("data: ")]


def drf_body(api, path: str) -> tuple[Any, bytes]:
    response = api.get(PREFIX + path)
    if not response.streaming:
        return response, response.content

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return response, asyncio.run(asyncio.wait_for(collect(), 10))


def test_finished_workflow_is_one_event_on_both_surfaces(api, fastapi_client, worker,
                                                         fast_stream):
    flow = chain(tasks.add.s(1, 2), tasks.mul.s(2)).apply_async()
    worker.run_until_empty()
    path = f"/workflows/{flow.id}/progress"
    response, body = drf_body(api, path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert events(body) == [{"status": "complete", "progress": 100}]
    with fastapi_client.stream("GET", PREFIX + path) as fast:
        assert fast.status_code == 200
        assert events(read_all(fast)) == [{"status": "complete", "progress": 100}]


def test_progress_is_the_share_of_finished_steps(queue, worker):
    from taskito.contrib.endpoints import workflow_progress_state

    flow = chain(tasks.add.s(1, 2), tasks.mul.s(2), tasks.mul.s(2), tasks.mul.s(2)).apply_async()
    assert workflow_progress_state(queue, str(flow.id)) == {"status": "pending", "progress": 0}
    worker.run_once()
    assert workflow_progress_state(queue, str(flow.id)) == {"status": "running", "progress": 25}
    flow.cancel()
    assert workflow_progress_state(queue, str(flow.id)) == {"status": "cancelled",
                                                            "progress": 100}


@pytest.mark.parametrize("workflow_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_unknown_workflow_is_404_before_streaming(api, fastapi_client, workflow_id):
    path = f"{PREFIX}/workflows/{workflow_id}/progress"
    for response in (api.get(path), fastapi_client.get(path)):
        assert response.status_code == 404
        assert response.json() == {"detail": f"workflow {workflow_id} not found"}
