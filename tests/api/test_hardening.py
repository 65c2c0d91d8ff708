"""No 5xx for a client's input, on both surfaces: bounded integers, cut echoes, NUL in
filters, trailing slashes, wrong methods (result waits: test_waits)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from taskito.contrib import endpoints
from tests.api.conftest import PREFIX
from tests.conftest import UNKNOWN_ID

pytestmark = pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed rows


def both(api: Any, fastapi_client: Any, path: str) -> tuple[int, Any]:
    drf, fast = api.get(PREFIX + path), fastapi_client.get(PREFIX + path)
    assert (drf.status_code, drf.json()) == (fast.status_code, fast.json()), path
    return drf.status_code, drf.json()


@pytest.mark.parametrize(("path", "name"), [
    ("/jobs?offset=9223372036854775808", "offset"),
    ("/jobs?offset=9223372036854775807", "offset"),
    (f"/jobs?offset={endpoints.MAX_OFFSET + 1}", "offset"),
    ("/jobs?limit=" + "9" * 5000, "limit"),
    ("/jobs?offset=1_0", "offset"),
    ("/jobs?limit=%C2%B2", "limit"),  # a superscript two: a digit to str.isdigit, not int()
    ("/dead-letters?offset=9223372036854775808", "offset"),
    ("/dead-letters?limit=-9223372036854775809", "limit"),
    ("/dead-letters?offset=--1", "offset"),  # signs int() refuses: a 400, never a 500
    ("/jobs?limit=%2B-5", "limit"),
    ("/jobs?limit=-%2B0", "limit"),
    ("/jobs?offset=%2B%2B3", "offset"),
    ("/dead-letters?limit=5-", "limit"),
    ("/jobs?queue=a%00b", "queue"),
    ("/jobs?task_name=" + "x" * 256, "task_name"),
    ("/jobs?status=" + "x" * 20_000, "status"),
    (f"/jobs/{UNKNOWN_ID}/result?timeout=1e400", "timeout"),
    (f"/jobs/{UNKNOWN_ID}/progress?partial=" + "y" * 1000, "partial"),
])
def test_out_of_range_input_is_400_naming_it(api, fastapi_client, path, name):
    if path.endswith(("/progress",)) or "/progress?" in path:
        drf = api.get(PREFIX + path)
        with fastapi_client.stream("GET", PREFIX + path) as fast:
            fast.read()
            assert (drf.status_code, fast.status_code) == (400, 400)
        detail = drf.json()["detail"]
    else:
        status, body = both(api, fastapi_client, path)
        assert status == 400
        detail = body["detail"]
    assert detail.startswith(f"{name} must be")
    assert len(detail) < 200


def test_the_largest_offset_is_an_empty_page(api, fastapi_client, completed_job):
    completed_job()
    assert both(api, fastapi_client, f"/jobs?offset={endpoints.MAX_OFFSET}") == (200, [])
    assert both(api, fastapi_client,
                f"/dead-letters?offset={endpoints.MAX_OFFSET}") == (200, [])


def test_errors_cut_what_they_echo(api, fastapi_client):
    long_id = "j" * 20_000  # httpx refuses URLs past 64 KB
    for path in (f"/jobs/{long_id}", f"/jobs/{long_id}/errors", f"/jobs/{long_id}/result",
                 f"/jobs/{long_id}/cancel", f"/dead-letters/{long_id}/retry"):
        method = "post" if path.endswith(("cancel", "retry")) else "get"
        drf = getattr(api, method)(PREFIX + path)
        fast = getattr(fastapi_client, method)(PREFIX + path)
        assert drf.status_code == fast.status_code == 404
        assert drf.json() == fast.json()
        assert len(drf.content) < 200 and drf.json()["detail"].endswith("... not found")


def test_a_trailing_slash_answers_the_same_json(api, fastapi_client, make_jobs):
    jobs = make_jobs()
    for path in ("/stats", "/stats/queues", "/jobs?limit=2", f"/jobs/{jobs.completed.id}",
                 f"/jobs/{jobs.dead.id}/errors", f"/jobs/{jobs.completed.id}/logs",
                 f"/jobs/{jobs.completed.id}/result", "/dead-letters", "/health",
                 "/readiness", f"/jobs/{uuid.uuid4()}", "/jobs?limit=0"):
        plain = both(api, fastapi_client, path)
        base, _, query = path.partition("?")
        slashed = both(api, fastapi_client, base + "/" + ("?" + query if query else ""))
        assert plain == slashed, path
    drf = api.post(f"{PREFIX}/jobs/{jobs.pending.id}/cancel/")
    assert drf.json() == {"cancelled": True}


def test_fastapi_wrong_methods_are_json_405_even_with_an_app_behind(queue):
    """The example mounts Django behind FastAPI: a wrong method must not fall through to
    Django's HTML 404."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.responses import HTMLResponse

    from taskito.contrib.fastapi import TaskitoRouter

    app = FastAPI()
    app.include_router(TaskitoRouter(queue), prefix=PREFIX)

    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        await HTMLResponse("<h1>Not Found</h1>", status_code=404)(scope, receive, send)

    app.mount("/", fallback)
    client = TestClient(app)
    for method, path, allow in (("POST", "/stats", "GET"), ("DELETE", "/jobs/x", "GET"),
                                ("GET", "/jobs/x/cancel", "POST"), ("PUT", "/health/", "GET"),
                                ("PATCH", "/jobs/x/progress", "GET")):
        response = client.request(method, PREFIX + path)
        assert response.status_code == 405, path
        assert response.json() == {"detail": f'Method "{method}" not allowed.'}
        assert response.headers["allow"] == allow
