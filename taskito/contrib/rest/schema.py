"""OpenAPI annotations through drf-spectacular when it is installed (the `openapi` extra, with
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema", as its own
install asks); without it the decorators do nothing and the views work the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from taskito.contrib import endpoints
from taskito.contrib.rest import serializers as s

try:
    import drf_spectacular.utils as spectacular
except ImportError:  # pragma: no cover - depends on the environment
    spectacular = None  # type: ignore[assignment]

ERRORS: dict[Any, type[serializers.Serializer]] = {
    401: s.DetailSerializer, 403: s.DetailSerializer, 405: s.DetailSerializer}


def documented(response: Any, *, params: str | None = None,
               not_found: bool = False, bad_request: bool = False,
               extra: dict[Any, Any] | None = None) -> Callable[[Any], Any]:
    """extend_schema(...) for one view method, or a no-op without drf-spectacular; `params`
    names the route whose query parameters (endpoints.PARAMETERS) it documents."""
    if spectacular is None:  # pragma: no cover
        return lambda fn: fn
    responses: dict[Any, Any] = {**({} if response is None else {200: response}), **ERRORS,
                                 **(extra or {})}
    if not_found:
        responses[404] = s.DetailSerializer
    if bad_request:
        responses[400] = s.DetailSerializer
    parameters = [spectacular.OpenApiParameter(p["name"], p["schema"],
                                               description=p["description"])
                  for p in endpoints.PARAMETERS.get(params or "", ())]
    return spectacular.extend_schema(responses=responses, parameters=parameters, request=None)


def stream_response() -> Any:
    """The progress stream's 200: text/event-stream (a string, described)."""
    if spectacular is None:  # pragma: no cover
        return None
    return spectacular.OpenApiResponse(
        response={"type": "string"},
        description="Server-sent events, each `data` a JSON {status, progress[, partial]}: "
                    "the current state, then every change, until a terminal status.")
