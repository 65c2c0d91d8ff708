"""The DRF views' OpenAPI schema (drf-spectacular) is generated and validates."""

from __future__ import annotations

import pytest

from taskito.contrib.endpoints import ROUTES

pytest.importorskip("drf_spectacular")


def test_openapi_schema_validates():
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    # /jobs/{id}/result and the progress stream (taskito.contrib.sse) are plain async
    # Django views (DRF has no async views): not listed
    assert {p for p in schema["paths"] if p.startswith("/tasks/")} == {
        "/tasks" + path for name, (_, path) in ROUTES.items()
        if name not in ("job_result", "job_progress")}
    job = schema["paths"]["/tasks/jobs/{job_id}"]["get"]["responses"]
    assert set(job) >= {"200", "403", "404"}
