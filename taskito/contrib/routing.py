"""URL helpers shared by taskito's HTTP includes (plain Django, no DRF): every path also
answers with a trailing slash."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, path


def slashed(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view again for its trailing-slash path: same answers, but no DRF view class on
    it, so that OpenAPI generators list each endpoint once."""
    if inspect.iscoroutinefunction(view):
        async def async_twin(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return await view(request, *args, **kwargs)
        twin: Callable[..., Any] = async_twin
    else:
        def sync_twin(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return view(request, *args, **kwargs)
        twin = sync_twin
    twin.__dict__.update({k: v for k, v in view.__dict__.items()
                          if k in ("csrf_exempt", "_non_atomic_requests")})
    return twin


def with_trailing_slashes(routes: Sequence[URLPattern]) -> list[URLPattern]:
    """The routes, then an unnamed trailing-slash twin of each."""
    return [*routes, *(path(f"{route.pattern}/", slashed(route.callback)) for route in routes)]
