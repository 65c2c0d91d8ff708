"""TaskitoRouter options: route selection, dependencies, exported models, OpenAPI."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def app_with(router):
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(router, prefix="/tasks")
    return app


def test_models_are_exported():
    from taskito.contrib import fastapi as module

    for name in ("StatsResponse", "JobResponse", "JobErrorResponse", "JobResultResponse",
                 "CancelResponse", "DeadLetterResponse", "RetryResponse", "TaskitoRouter"):
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
        url = "/tasks" + path.format(job_id="x", dead_id="x")
        assert client.request(method, url).status_code == 403, url
    assert client.get("/tasks/stats", headers={"X-Token": "secret"}).status_code == 200


def test_openapi_lists_every_path_with_tags(queue):
    from taskito.contrib.endpoints import ROUTES
    from taskito.contrib.fastapi import TaskitoRouter

    schema = app_with(TaskitoRouter(queue, tags=["jobs"])).openapi()
    assert set(schema["paths"]) == {"/tasks" + path for _, path in ROUTES.values()}
    assert schema["paths"]["/tasks/stats"]["get"]["tags"] == ["jobs"]
    assert "JobResponse" in schema["components"]["schemas"]
