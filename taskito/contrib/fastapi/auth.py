"""`DjangoSessionAuth`: a FastAPI dependency that lets in the users of the Django session,
under the admin's rules (taskito.contrib.access) and Django's CSRF protection.

    from taskito.contrib.fastapi import TaskitoRouter, django_session_auth
    app.include_router(TaskitoRouter(queue, dependencies=[Depends(django_session_auth)]),
                       prefix="/tasks")

A browser sends the session cookie with every request to the site, whichever page made it,
so an unsafe method (POST, ...) must prove it comes from the site itself, as Django's own
views must: `Sec-Fetch-Site` (when the browser sends it) must say same-origin, an `Origin`
must be the site's (or in CSRF_TRUSTED_ORIGINS), and Django's CSRF token must be in the
`X-CSRFToken` header (settings.CSRF_HEADER_NAME), matching the csrftoken cookie.
"""

from __future__ import annotations

import io
from collections.abc import MutableMapping
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.datastructures import MultiValueDict
from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from taskito.contrib import access
from taskito.contrib.endpoints import echo, release_connections

#: the route names TaskitoRouter gives FastAPI: "taskito_" + a name of endpoints.ROUTES
ROUTE_PREFIX = "taskito_"
#: the Prometheus scrape (TaskitoRouter(metrics=True)), which also takes a scraper's token
METRICS_ROUTE = "metrics"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Sec-Fetch-Site values of a request the site's own pages (or the user's typing) made
OWN_SITE = frozenset({"same-origin", "none"})


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF checks (Origin, Referer over HTTPS, the token) answering the reason of
    a refusal instead of Django's HTML page, as DRF's session authentication does."""

    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def csrf_refusal(request: HttpRequest) -> str | None:
    """Why an unsafe request fails Django's CSRF protection, or None when it passes."""
    if request.method in SAFE_METHODS:
        return None
    fetch_site = request.META.get("HTTP_SEC_FETCH_SITE")
    if fetch_site is not None and fetch_site not in OWN_SITE:
        return f"a {echo(fetch_site)} request (Sec-Fetch-Site) is not accepted."
    check = _CsrfCheck(lambda _request: None)  # type: ignore[arg-type]
    try:
        check.process_request(request)
        reason: Any = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    except DisallowedHost:
        return "the Host header is not in ALLOWED_HOSTS."
    return reason if isinstance(reason, str) else None


def route_name(request: Request) -> str | None:
    """The endpoints.ROUTES name of the taskito route being called, else None."""
    name = getattr(request.scope.get("route"), "name", None) or ""
    return name.removeprefix(ROUTE_PREFIX) if name.startswith(ROUTE_PREFIX) else None


class DjangoSessionAuth:
    """FastAPI dependency: the Django session's user, who must be active staff with the
    permission the route needs (the admin's; staff alone for routes that are not
    taskito's), and CSRF-checked for unsafe methods. Refusals are 403 with a `detail`, as
    DRF answers them (anonymous users included). Returns the user (None on a route that
    TASKITO["HEALTH_PUBLIC"] opens to anyone)."""

    async def __call__(self, request: Request) -> Any:
        route = route_name(request)
        if access.is_public(route):  # TASKITO["HEALTH_PUBLIC"]: no session, no query
            request.state.user = None
            return None
        presented = (access.bearer_token(request.headers.get("authorization"))
                     if route == METRICS_ROUTE else None)
        if presented is not None and access.metrics_token_matches(presented):
            request.state.user = None
            return None  # a scraper with TASKITO["METRICS_TOKEN"]: no user
        user, why = await run_in_threadpool(self.check, request.scope, route)
        if why is not None and presented is not None:
            raise HTTPException(status_code=401, detail="Invalid token.",
                                headers={"WWW-Authenticate": 'Bearer realm="taskito"'})
        if why is not None:
            raise HTTPException(status_code=why[0], detail=why[1])
        request.state.user = user
        return user

    def check(self, scope: MutableMapping[str, Any], route: str | None) -> tuple[Any, Any]:
        """(user, None) or (user, (status, detail)), from the request's cookies and headers."""
        release_connections()  # FastAPI sends no request signals: clean up here
        try:
            request = ASGIRequest(scope, io.BytesIO())
            # The token comes from the header only: Django's CSRF check would otherwise parse
            # the (unread) body by its Content-Type, and a bad multipart header or a large
            # Content-Length would be a 500.
            request._post = QueryDict()  # type: ignore[attr-defined]
            request._files = MultiValueDict()  # type: ignore[attr-defined]
            request.session = import_module(settings.SESSION_ENGINE).SessionStore(
                request.COOKIES.get(settings.SESSION_COOKIE_NAME))
            user = auth.get_user(request)
            request.user = user
            if not user.is_authenticated:
                return user, (403, access.NOT_AUTHENTICATED)
            csrf = csrf_refusal(request)
            if csrf is not None:
                return user, (403, f"CSRF Failed: {csrf}")
            return user, access.refusal(user, route)
        finally:
            release_connections()


#: the dependency with Django's settings: `dependencies=[Depends(django_session_auth)]`
django_session_auth = DjangoSessionAuth()
