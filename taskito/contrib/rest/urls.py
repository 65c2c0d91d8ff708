"""`path("tasks/", include("taskito.contrib.rest.urls"))`: the API under /tasks/, the
progress stream of taskito.contrib.sse included (it answers 501 until django-eventstream is
installed). Every path also answers with a trailing slash (the same view, unnamed)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.urls import path

from taskito.contrib.rest import views
from taskito.contrib.sse import views as sse_views

app_name = "taskito"

routes = [
    path("stats", views.StatsView.as_view(), name="stats"),
    path("stats/queues", views.QueueStatsView.as_view(), name="stats_queues"),
    path("jobs", views.JobListView.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="job"),
    path("jobs/<str:job_id>/errors", views.JobErrorsView.as_view(), name="job_errors"),
    path("jobs/<str:job_id>/logs", views.JobLogsView.as_view(), name="job_logs"),
    path("jobs/<str:job_id>/result", views.job_result, name="job_result"),
    path("jobs/<str:job_id>/progress", sse_views.progress, name="job_progress"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job_cancel"),
    path("dead-letters", views.DeadLetterListView.as_view(), name="dead_letters"),
    path("dead-letters/<str:dead_id>/retry", views.DeadLetterRetryView.as_view(),
         name="dead_letter_retry"),
    path("health", views.HealthView.as_view(), name="health"),
    path("readiness", views.ReadinessView.as_view(), name="readiness"),
]



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


urlpatterns = routes + [path(f"{route.pattern}/", slashed(route.callback)) for route in routes]
