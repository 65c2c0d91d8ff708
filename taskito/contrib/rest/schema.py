"""OpenAPI annotations through drf-spectacular when it is installed (the `openapi` extra, with
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema", as its own
install asks); without it the decorators do nothing and the views work the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from taskito.contrib import endpoints
from taskito.contrib.rest import serializers as s
from taskito.states import JobStatus

try:
    import drf_spectacular.utils as spectacular
except ImportError:  # pragma: no cover - depends on the environment
    spectacular = None  # type: ignore[assignment]

ERRORS: dict[Any, type[serializers.Serializer]] = {
    401: s.DetailSerializer, 403: s.DetailSerializer, 405: s.DetailSerializer}

#: (name, JSON schema, description) of query parameters, typed and bounded as
#: taskito.contrib.endpoints checks them
Param = tuple[str, Any, str]
PAGE: tuple[Param, ...] = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": endpoints.MAX_PAGE,
               "default": endpoints.DEFAULT_PAGE}, "page size"),
    ("offset", {"type": "integer", "minimum": 0, "maximum": endpoints.MAX_OFFSET,
                "default": 0}, "rows to skip"))
FILTERS: tuple[Param, ...] = (
    ("status", {"type": "string", "enum": [*(st.label for st in JobStatus), "completed"]},
     "only jobs in this status"),
    ("queue", {"type": "string", "maxLength": endpoints.MAX_TEXT}, "only this queue"),
    ("task_name", {"type": "string", "maxLength": endpoints.MAX_TEXT}, "only this task"))
TIMEOUT: tuple[Param, ...] = (
    ("timeout", {"type": "number", "minimum": 0, "maximum": endpoints.MAX_RESULT_WAIT,
                 "default": 0}, "seconds to wait for a terminal status"),)
PARTIAL: tuple[Param, ...] = (
    ("partial", {"type": "boolean", "default": False}, "events also carry the partial result"),)


def documented(response: Any, *, params: tuple[Param, ...] = (),
               not_found: bool = False, bad_request: bool = False,
               extra: dict[Any, Any] | None = None) -> Callable[[Any], Any]:
    """extend_schema(...) for one view method, or a no-op without drf-spectacular."""
    if spectacular is None:  # pragma: no cover
        return lambda fn: fn
    responses: dict[Any, Any] = {**({} if response is None else {200: response}), **ERRORS,
                                 **(extra or {})}
    if not_found:
        responses[404] = s.DetailSerializer
    if bad_request:
        responses[400] = s.DetailSerializer
    parameters = [spectacular.OpenApiParameter(name, kind, description=text)
                  for name, kind, text in params]
    return spectacular.extend_schema(responses=responses, parameters=parameters, request=None)


def stream_response() -> Any:
    """The progress stream's 200: text/event-stream (a string, described)."""
    if spectacular is None:  # pragma: no cover
        return None
    return spectacular.OpenApiResponse(
        response={"type": "string"},
        description="Server-sent events, each `data` a JSON {status, progress[, partial]}: "
                    "the current state, then every change, until a terminal status.")
