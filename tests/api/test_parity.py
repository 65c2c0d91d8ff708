"""DRF and FastAPI answer every endpoint with the same status code and the same JSON."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from taskito import chain
from taskito.contrib.endpoints import ROUTES
from tests.api.conftest import PREFIX, dead_letter_id
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed rows

#: compared on its own below: the progress stream answers server-sent events, not JSON
NOT_COMPARED = {"job_progress", "workflow_progress"}


def route_of(method: str, path: str) -> str:
    """The ROUTES name a request path belongs to."""
    for name, (route_method, template) in ROUTES.items():
        pattern = re.sub(r"\{\w+\}", "[^/]+", template)
        if route_method == method.upper() and re.fullmatch(pattern, path.split("?")[0]):
            return name
    raise AssertionError(f"no route for {method} {path}")


def test_drf_and_fastapi_answer_alike(api, fastapi_client, make_jobs, queue):
    first, second = make_jobs(), make_jobs()  # the second set is for FastAPI's writes

    compared: set[str] = set()

    def both(method: str, path: str, fastapi_path: str | None = None) -> Any:
        compared.add(route_of(method, path))
        drf = getattr(api, method)(PREFIX + path)
        fast = getattr(fastapi_client, method)(PREFIX + (fastapi_path or path))
        assert (drf.status_code, drf.json()) == (fast.status_code, fast.json()), path
        return drf.status_code, drf.json()

    missing, dead_first = uuid.uuid4(), dead_letter_id(queue, first.dead)
    flow = chain(tasks.add.s(1, 2), tasks.mul.s(2)).apply_async()
    reads = [
        "/stats", "/stats/queues", "/jobs", "/jobs?limit=2&offset=1",
        "/jobs?status=complete", "/jobs?queue=later&task_name=tests.testapp.tasks.add",
        "/jobs?limit=0", "/jobs?limit=101", "/jobs?limit=x", "/jobs?offset=-1",
        "/jobs?status=bogus", "/jobs?status=", f"/jobs/{first.completed.id}",
        f"/jobs/{first.dead.id}", f"/jobs/{missing}", "/jobs/not-a-uuid",
        f"/jobs/{first.dead.id}/errors", f"/jobs/{first.completed.id}/logs",
        f"/jobs/{missing}/errors", f"/jobs/{missing}/logs", "/jobs/x/logs",
        f"/jobs/{first.completed.id}/result", f"/jobs/{first.dead.id}/result",
        f"/jobs/{first.pending.id}/result?timeout=0",
        f"/jobs/{first.pending.id}/result?timeout=0.05", f"/jobs/{missing}/result",
        f"/jobs/{first.pending.id}/result?timeout=301",
        f"/jobs/{first.pending.id}/result?timeout=abc",
        "/dead-letters", "/dead-letters?limit=1&offset=1", "/dead-letters?limit=0",
        "/dead-letters?offset=-1", "/health", "/readiness", f"/workflows/{flow.id}",
        f"/workflows/{missing}", "/workflows/not-a-uuid",
    ]
    statuses = {path: both("get", path)[0] for path in reads}
    assert {s for s in statuses.values()} == {200, 400, 404}

    # writes: each surface acts on its own, identical, job
    for name in ("pending", "running", "completed"):
        both("post", f"/jobs/{getattr(first, name).id}/cancel",
             f"/jobs/{getattr(second, name).id}/cancel")
    both("post", f"/jobs/{missing}/cancel")
    both("post", "/jobs/bad/cancel")
    assert both("get", f"/jobs/{first.pending.id}")[1]["status"] == "cancelled"

    dead_second = dead_letter_id(queue, second.dead)
    drf = api.post(f"{PREFIX}/dead-letters/{dead_first}/retry")
    fast = fastapi_client.post(f"{PREFIX}/dead-letters/{dead_second}/retry")
    assert drf.status_code == fast.status_code == 200
    assert set(drf.json()) == set(fast.json()) == {"new_job_id"}
    both("post", f"/dead-letters/{dead_first}/retry")  # retried already: 404 on both
    both("post", "/dead-letters/garbage/retry")
    both("get", f"/jobs/{drf.json()['new_job_id']}", f"/jobs/{drf.json()['new_job_id']}")
    assert compared == set(ROUTES) - NOT_COMPARED


def events_of(body: str) -> list[Any]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def test_progress_streams_answer_alike(api, fastapi_client, make_jobs):
    """Finished jobs (answered with their one final event), unknown ids, bad parameters:
    the same status codes, the same event data or the same JSON error on both sides."""
    jobs = make_jobs()
    paths = [f"/jobs/{jobs.completed.id}/progress", f"/jobs/{jobs.dead.id}/progress",
             f"/jobs/{jobs.completed.id}/progress?partial=1", f"/jobs/{uuid.uuid4()}/progress",
             "/jobs/not-a-uuid/progress", f"/jobs/{jobs.completed.id}/progress?partial=maybe"]
    for path in paths:
        drf = api.get(PREFIX + path)
        with fastapi_client.stream("GET", PREFIX + path) as fast:
            fast_body = fast.read().decode()
        assert drf.status_code == fast.status_code, path
        if drf.status_code == 200:
            assert events_of(drf.content.decode()) == events_of(fast_body) != [], path
        else:
            assert drf.json() == json.loads(fast_body), path
