"""Both OpenAPI documents are valid and tell the truth: every route, bounded integer
parameters, the error answers, the stream as text/event-stream; and a bounded schemathesis
pass feeds their generated inputs to every endpoint (no 5xx, answers that conform)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from taskito.contrib.endpoints import CHECKED_PATH, MAX_OFFSET, MAX_PAGE, NO_NOT_FOUND, ROUTES
from tests.api.conftest import PREFIX

pytest.importorskip("drf_spectacular")

pytestmark = pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed rows

EXAMPLES = 12  # per operation: the whole pass stays within seconds


def drf_schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def fastapi_app(queue: Any) -> Any:
    from fastapi import FastAPI

    from taskito.contrib.fastapi import TaskitoRouter

    app = FastAPI()
    app.include_router(TaskitoRouter(queue), prefix=PREFIX)
    return app


def operations(schema: dict[str, Any]) -> dict[str, Any]:
    return {path: ops for path, ops in schema["paths"].items() if path.startswith(PREFIX)}


def assert_truthful(schema: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(schema)
    paths = operations(schema)
    assert set(paths) == {PREFIX + path for _, path in ROUTES.values()}
    for name, (method, path) in ROUTES.items():
        operation = paths[PREFIX + path][method.lower()]
        assert {"401", "403"} <= set(operation["responses"]), name
        if "{" in path:
            assert ("404" in operation["responses"]) == (name not in NO_NOT_FOUND), name
        if name in CHECKED_PATH:
            assert "400" in operation["responses"], name
        params = {p["name"]: p["schema"] for p in operation.get("parameters", ())}
        if "limit" in params:
            assert params["limit"]["type"] == "integer"
            assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, MAX_PAGE)
            assert params["offset"]["maximum"] == MAX_OFFSET
            assert "400" in operation["responses"]
    stream = paths[f"{PREFIX}/jobs/{{job_id}}/progress"]["get"]["responses"]
    assert set(stream["200"]["content"]) == {"text/event-stream"}
    result = paths[f"{PREFIX}/jobs/{{job_id}}/result"]["get"]
    assert "503" in result["responses"]
    [timeout] = [p for p in result["parameters"] if p["name"] == "timeout"]
    assert timeout["schema"]["type"] == "number" and timeout["schema"]["maximum"] == 300


def test_drf_openapi_is_valid_and_truthful():
    from drf_spectacular.validation import validate_schema

    schema = drf_schema()
    validate_schema(schema)
    assert_truthful(schema)


def test_fastapi_openapi_is_valid_31_and_truthful(queue):
    schema = fastapi_app(queue).openapi()
    assert schema["openapi"].startswith("3.1")
    assert_truthful(schema)


def test_both_documents_describe_the_same_parameters(queue):
    """One source (endpoints.PARAMETERS): the filters' NUL pattern included on both."""
    def parameters(schema: dict[str, Any]) -> dict[str, Any]:
        return {(method, path): {p["name"]: p["schema"] for p in op.get("parameters", ())
                                 if p["in"] == "query"}
                for path, ops in operations(schema).items() for method, op in ops.items()}

    drf, fast = parameters(drf_schema()), parameters(fastapi_app(queue).openapi())
    assert drf == fast
    assert drf[("get", f"{PREFIX}/jobs")]["queue"]["pattern"] == "^[^\u0000]*$"


def fuzz(schema: Any, negative: bool = False, **call: Any) -> int:
    """Run every operation's generated cases; the number of requests sent. Positive cases
    (schema-valid input) must get answers that conform; negative ones (input the schema
    forbids: wrong types, out of bounds, unknown parameters) never a 5xx."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis import checks as st_checks

    mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE
    checks = [st_checks.not_a_server_error, st_checks.content_type_conformance]
    if not negative:
        checks += [st_checks.status_code_conformance, st_checks.response_schema_conformance]
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if negative and not operation.query:
            continue  # nothing to get wrong but the path's id, which the positive pass varies

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            nonlocal sent
            response = case.call(**call)
            sent += 1
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                case.query, response.text[:300])
            case.validate_response(response, checks=checks)

        run()
    return sent


def drf_fuzz_target(staff: Any, settings: Any) -> tuple[Any, dict[str, str]]:
    """The DRF schema bound to the WSGI app, and the Basic credentials of `staff`."""
    import schemathesis
    from django.core.wsgi import get_wsgi_application

    # Basic authentication checks the password on every request: a fast hasher keeps the
    # pass within seconds
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    staff.set_password("pw")
    staff.save()
    schema = schemathesis.openapi.from_dict(drf_schema())
    schema.app = get_wsgi_application()
    token = base64.b64encode(b"staff:pw").decode()  # Basic: no CSRF token to forge
    return schema.include(path_regex=f"^{PREFIX}/"), {"Authorization": f"Basic {token}"}


def fastapi_fuzz_target(queue: Any) -> Any:
    import schemathesis

    app = fastapi_app(queue)
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    return schema


def test_schemathesis_finds_no_5xx_in_drf(staff, make_jobs, settings):
    make_jobs()
    schema, headers = drf_fuzz_target(staff, settings)
    assert fuzz(schema, headers=headers) >= len(ROUTES)


def test_schemathesis_finds_no_5xx_in_fastapi(queue, make_jobs):
    make_jobs()
    assert fuzz(fastapi_fuzz_target(queue)) >= len(ROUTES)


def test_schemathesis_negative_input_is_no_5xx_in_drf(staff, make_jobs, settings):
    make_jobs()
    schema, headers = drf_fuzz_target(staff, settings)
    assert fuzz(schema, negative=True, headers=headers) >= 4 * EXAMPLES // 2


def test_schemathesis_negative_input_is_no_5xx_in_fastapi(queue, make_jobs):
    make_jobs()
    assert fuzz(fastapi_fuzz_target(queue), negative=True) >= 4 * EXAMPLES // 2
