"""Who may call which HTTP endpoint: the admin's rules, shared by DRF, FastAPI and the
progress streams. Framework-free (Django's auth only), like taskito.contrib.endpoints.

An endpoint needs what the admin asks for the same thing: an active staff user holding the
model's view permission to read, and the permission of the matching admin action to act
(cancel: `taskito.change_job`, retry a dead letter: `taskito.change_deadletter`).
Superusers hold every permission."""

from __future__ import annotations

import hmac
from typing import Any

from taskito.conf import taskito_settings
from taskito.contrib.endpoints import ROUTES

VIEW_JOB = "taskito.view_job"
VIEW_DEAD_LETTER = "taskito.view_deadletter"

#: route name (taskito.contrib.endpoints.ROUTES) -> the permission it needs
PERMISSIONS: dict[str, str] = {
    "stats": VIEW_JOB,
    "stats_queues": VIEW_JOB,
    "jobs": VIEW_JOB,
    "job": VIEW_JOB,
    "job_errors": VIEW_JOB,
    "job_logs": VIEW_JOB,
    "job_result": VIEW_JOB,
    "job_progress": VIEW_JOB,
    "job_cancel": "taskito.change_job",  # the admin's "Cancel selected jobs"
    "job_requeue": "taskito.change_job",  # a state change of jobs, as cancel is
    "task_revoke": "taskito.change_job",
    "workers": VIEW_JOB,  # who runs the jobs: read with them
    "circuit_breakers": VIEW_JOB,  # whether a task's jobs run: read with them
    "dead_letters": VIEW_DEAD_LETTER,
    "dead_letter_retry": "taskito.change_deadletter",  # "Retry selected dead letters"
    "workflow": VIEW_JOB,  # a workflow is its steps: reading it is reading jobs
    "workflow_progress": VIEW_JOB,
    "health": VIEW_JOB,
    "readiness": VIEW_JOB,
}
assert set(PERMISSIONS) == set(ROUTES), "every route needs a permission"
#: routes that answer no JSON, so live outside endpoints.ROUTES: the Prometheus scrape
#: (taskito.contrib.prometheus) reads what the stats and workers routes read
OTHER_PERMISSIONS: dict[str, str] = {"metrics": VIEW_JOB}

NOT_AUTHENTICATED = "Authentication credentials were not provided."
NOT_STAFF = "You do not have permission to perform this action."


#: routes that TASKITO["HEALTH_PUBLIC"] opens to anyone
HEALTH_ROUTES = frozenset({"health"})


def is_public(route: str | None) -> bool:
    """Whether anyone may call `route` without logging in: GET /health when
    TASKITO["HEALTH_PUBLIC"] is set (for probes that carry no credentials). It reads no
    session and no user, so the probe costs no query."""
    return route in HEALTH_ROUTES and bool(taskito_settings.HEALTH_PUBLIC)


def required_permission(route: str | None) -> str | None:
    """The permission a route needs; None for a route that is not taskito's (then staff
    status alone is checked)."""
    if route is None:
        return None
    return PERMISSIONS.get(route) or OTHER_PERMISSIONS.get(route)


def refusal(user: Any, route: str | None) -> tuple[int, str] | None:
    """(HTTP status, detail) when `user` may not call `route`, else None. Anonymous users
    get 403 (what DRF answers with its default, session-first authentication). A public
    route (`is_public`) refuses no one."""
    if is_public(route):
        return None
    if user is None or not user.is_authenticated:
        return 403, NOT_AUTHENTICATED
    if not (user.is_active and user.is_staff):
        return 403, NOT_STAFF
    perm = required_permission(route)
    if perm is not None and not user.has_perm(perm):
        return 403, f"You need the {perm} permission for this."
    return None


def allowed(user: Any, route: str | None) -> bool:
    """Whether `user` may call the route named `route` (see `refusal`)."""
    return refusal(user, route) is None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def metrics_token_matches(presented: str | None) -> bool:
    """Whether a scraper's bearer token is TASKITO["METRICS_TOKEN"] (compared in constant
    time); never when the setting is unset or empty."""
    expected = taskito_settings.METRICS_TOKEN
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), str(expected).encode())
