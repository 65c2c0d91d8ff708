"""DRF and FastAPI answer every endpoint with the same status code and the same JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from taskito import chain
from taskito.contrib.endpoints import ROUTES
from tests.api.conftest import PREFIX, dead_letter_id
from tests.conftest import UNKNOWN_ID
from tests.helpers.sse import messages_of
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


def answers_alike(api, fastapi_client, method: str, path: str,
                  fastapi_path: str | None = None) -> tuple[int, Any]:
    """The same request to DRF and FastAPI: the same status code and the same JSON."""
    drf = getattr(api, method)(PREFIX + path)
    fast = getattr(fastapi_client, method)(PREFIX + (fastapi_path or path))
    assert (drf.status_code, drf.json()) == (fast.status_code, fast.json()), path
    return drf.status_code, drf.json()


#: the GET requests compared, per route: {completed}, {dead}, {pending} are jobs of
#: make_jobs(), {flow} a workflow, {missing} an id nothing has
READS: dict[str, list[str]] = {
    "stats": ["/stats"],
    "stats_queues": ["/stats/queues"],
    "jobs": ["/jobs", "/jobs?limit=2&offset=1", "/jobs?status=complete",
             "/jobs?queue=later&task_name=tests.testapp.tasks.add", "/jobs?limit=0",
             "/jobs?limit=101", "/jobs?limit=x", "/jobs?offset=-1", "/jobs?status=bogus",
             "/jobs?status="],
    "job": ["/jobs/{completed}", "/jobs/{dead}", "/jobs/{missing}", "/jobs/not-a-uuid"],
    "job_errors": ["/jobs/{dead}/errors", "/jobs/{missing}/errors"],
    "job_logs": ["/jobs/{completed}/logs", "/jobs/{missing}/logs", "/jobs/x/logs"],
    "job_result": ["/jobs/{completed}/result", "/jobs/{dead}/result",
                   "/jobs/{pending}/result?timeout=0", "/jobs/{pending}/result?timeout=0.05",
                   "/jobs/{missing}/result", "/jobs/{pending}/result?timeout=301",
                   "/jobs/{pending}/result?timeout=abc"],
    "dead_letters": ["/dead-letters", "/dead-letters?limit=1&offset=1",
                     "/dead-letters?limit=0", "/dead-letters?offset=-1"],
    "health": ["/health"],
    "workers": ["/workers"],
    "circuit_breakers": ["/circuit-breakers"],
    "readiness": ["/readiness"],
    "workflow": ["/workflows/{flow}", "/workflows/{missing}", "/workflows/not-a-uuid"],
}
#: compared by the write tests below
WRITES = {"job_cancel", "dead_letter_retry", "job_requeue", "task_revoke"}


def test_every_route_is_compared():
    assert set(READS) | WRITES | NOT_COMPARED == set(ROUTES)
    for name, paths in READS.items():
        assert {route_of("get", p) for p in paths} == {name}, name


@pytest.mark.parametrize("route", READS)
def test_reads_answer_alike(api, fastapi_client, make_jobs, route):
    jobs = make_jobs()
    flow = chain(tasks.add.s(1, 2), tasks.mul.s(2)).apply_async()
    ids = {"completed": jobs.completed.id, "dead": jobs.dead.id, "pending": jobs.pending.id,
           "missing": UNKNOWN_ID, "flow": flow.id}
    statuses = {answers_alike(api, fastapi_client, "get", p.format(**ids))[0]
                for p in READS[route]}
    assert statuses <= {200, 400, 404}


@pytest.mark.parametrize("kind", ["pending", "running", "completed", "missing", "garbage"])
def test_cancel_answers_alike(api, fastapi_client, make_jobs, kind):
    first, second = make_jobs(), make_jobs()  # each surface acts on its own, identical job
    if kind in ("missing", "garbage"):
        job_id = UNKNOWN_ID if kind == "missing" else "bad"
        answers_alike(api, fastapi_client, "post", f"/jobs/{job_id}/cancel")
        return
    mine, theirs = getattr(first, kind).id, getattr(second, kind).id
    status, body = answers_alike(api, fastapi_client, "post", f"/jobs/{mine}/cancel",
                                 f"/jobs/{theirs}/cancel")
    assert (status, body) == (200, {"cancelled": kind in ("pending", "running")})
    # both jobs now read the same (each through both surfaces)
    _, mine_now = answers_alike(api, fastapi_client, "get", f"/jobs/{mine}")
    _, theirs_now = answers_alike(api, fastapi_client, "get", f"/jobs/{theirs}")
    assert mine_now["status"] == theirs_now["status"]


def test_dead_letter_retry_answers_alike(api, fastapi_client, make_jobs, queue):
    first, second = make_jobs(), make_jobs()
    dead_first, dead_second = dead_letter_id(queue, first.dead), dead_letter_id(queue,
                                                                                second.dead)
    drf = api.post(f"{PREFIX}/dead-letters/{dead_first}/retry")
    fast = fastapi_client.post(f"{PREFIX}/dead-letters/{dead_second}/retry")
    assert drf.status_code == fast.status_code == 200
    assert set(drf.json()) == set(fast.json()) == {"new_job_id"}
    # retried already: 404 on both
    answers_alike(api, fastapi_client, "post", f"/dead-letters/{dead_first}/retry")
    answers_alike(api, fastapi_client, "post", "/dead-letters/garbage/retry")
    answers_alike(api, fastapi_client, "get", f"/jobs/{drf.json()['new_job_id']}")


@pytest.mark.parametrize("kind", ["dead", "completed", "pending", "missing", "garbage"])
def test_requeue_answers_alike(api, fastapi_client, make_jobs, kind):
    first, second = make_jobs(), make_jobs()
    mine, theirs = ((getattr(first, kind).id, getattr(second, kind).id)
                    if hasattr(first, kind) else (UNKNOWN_ID if kind == "missing" else "bad",) * 2)
    status, body = answers_alike(api, fastapi_client, "post", f"/jobs/{mine}/requeue",
                                 f"/jobs/{theirs}/requeue")
    assert (status, body) == (200, {"requeued": kind == "dead"})


def test_revoke_answers_alike(api, fastapi_client, make_jobs):
    make_jobs(), make_jobs()  # a pending add() each
    drf = api.post(f"{PREFIX}/tasks/{tasks.add.name}/revoke")
    assert (drf.status_code, drf.json()) == (200, {"revoked": 2})
    answers_alike(api, fastapi_client, "post", f"/tasks/{tasks.add.name}/revoke")  # 0 left
    answers_alike(api, fastapi_client, "post", "/tasks/no.such.task/revoke")
    status, body = answers_alike(api, fastapi_client, "post", "/tasks/a%00b/revoke")
    assert status == 400 and "task_name" in body["detail"]


def test_workers_answer_alike(api, fastapi_client, make_jobs, engine):
    from django.utils import timezone

    make_jobs()  # one job running, held by "api-tests"
    engine.heartbeat(worker_id="api-tests", hostname="box", pid=7, queues="claimed",
                     concurrency=3, started_at=timezone.now())
    _, body = answers_alike(api, fastapi_client, "get", "/workers")
    (worker,) = body
    assert {k: worker[k] for k in ("id", "host", "pid", "queues", "concurrency", "busy")} == {
        "id": "api-tests", "host": "box", "pid": 7, "queues": ["claimed"], "concurrency": 3,
        "busy": 1}


def test_circuit_breakers_answer_alike(api, fastapi_client):
    from django.utils import timezone

    from taskito.models import CircuitBreaker

    CircuitBreaker.objects.create(task_name=tasks.guarded.name, state=1, failure_count=3,
                                  opened_at=timezone.now())
    _, body = answers_alike(api, fastapi_client, "get", "/circuit-breakers")
    (shown,) = [b for b in body if b["task_name"] == tasks.guarded.name]
    assert (shown["state"], shown["failure_count"]) == ("open", 3)
    assert shown["opened_at"].endswith(("Z", "+00:00"))


def test_progress_streams_answer_alike(api, fastapi_client, make_jobs):
    """Finished jobs (answered with their one final event), unknown ids, bad parameters:
    the same status codes, the same event data or the same JSON error on both sides."""
    jobs = make_jobs()
    paths = [f"/jobs/{jobs.completed.id}/progress", f"/jobs/{jobs.dead.id}/progress",
             f"/jobs/{jobs.completed.id}/progress?partial=1", f"/jobs/{UNKNOWN_ID}/progress",
             "/jobs/not-a-uuid/progress", f"/jobs/{jobs.completed.id}/progress?partial=maybe"]
    for path in paths:
        drf = api.get(PREFIX + path)
        with fastapi_client.stream("GET", PREFIX + path) as fast:
            fast_body = fast.read().decode()
        assert drf.status_code == fast.status_code, path
        if drf.status_code == 200:
            assert messages_of(drf.content.decode()) == messages_of(fast_body) != [], path
        else:
            assert drf.json() == json.loads(fast_body), path
