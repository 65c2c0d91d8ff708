"""OpenAPI annotations through drf-spectacular when it is installed (the `openapi` extra, with
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema", as its own
install asks); without it the decorators do nothing and the views work the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from taskito.contrib.rest import serializers as s

try:
    import drf_spectacular.utils as spectacular
except ImportError:  # pragma: no cover - depends on the environment
    spectacular = None  # type: ignore[assignment]

ERRORS: dict[int, type[serializers.Serializer]] = {
    401: s.DetailSerializer, 403: s.DetailSerializer}


def documented(response: Any, *, params: tuple[tuple[str, type, str], ...] = (),
               not_found: bool = False, bad_request: bool = False,
               extra: dict[int, Any] | None = None) -> Callable[[Any], Any]:
    """extend_schema(...) for one view method, or a no-op without drf-spectacular."""
    if spectacular is None:  # pragma: no cover
        return lambda fn: fn
    responses: dict[int, Any] = {200: response, **ERRORS, **(extra or {})}
    if not_found:
        responses[404] = s.DetailSerializer
    if bad_request:
        responses[400] = s.DetailSerializer
    parameters = [spectacular.OpenApiParameter(name, kind, description=text)
                  for name, kind, text in params]
    return spectacular.extend_schema(responses=responses, parameters=parameters, request=None)
