"""`path("tasks/", include("taskito.contrib.rest.urls"))`: the API under /tasks/, the
progress stream of taskito.contrib.sse included (it answers 501 until django-eventstream is
installed). Every path also answers with a trailing slash (the same view, unnamed)."""

from __future__ import annotations

from django.urls import include, path

from taskito.contrib.rest import views
from taskito.contrib.routing import with_trailing_slashes

app_name = "taskito"

routes = [
    path("stats", views.StatsView.as_view(), name="stats"),
    path("stats/queues", views.QueueStatsView.as_view(), name="stats_queues"),
    path("jobs", views.JobListView.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="job"),
    path("jobs/<str:job_id>/errors", views.JobErrorsView.as_view(), name="job_errors"),
    path("jobs/<str:job_id>/logs", views.JobLogsView.as_view(), name="job_logs"),
    path("jobs/<str:job_id>/result", views.job_result, name="job_result"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job_cancel"),
    path("jobs/<str:job_id>/requeue", views.JobRequeueView.as_view(), name="job_requeue"),
    path("tasks/<str:task_name>/revoke", views.TaskRevokeView.as_view(), name="task_revoke"),
    path("workers", views.WorkerListView.as_view(), name="workers"),
    path("circuit-breakers", views.CircuitBreakerListView.as_view(), name="circuit_breakers"),
    path("dead-letters", views.DeadLetterListView.as_view(), name="dead_letters"),
    path("dead-letters/<str:dead_id>/retry", views.DeadLetterRetryView.as_view(),
         name="dead_letter_retry"),
    path("workflows/<str:workflow_id>", views.WorkflowDetailView.as_view(), name="workflow"),
    path("workflows/<str:workflow_id>/progress", views.workflow_progress,
         name="workflow_progress"),
    path("health", views.HealthView.as_view(), name="health"),
    path("readiness", views.ReadinessView.as_view(), name="readiness"),
]


# The progress stream (taskito.contrib.sse) is included by its module path: SSE builds on this
# package (its permission classes), so this package never imports SSE.
urlpatterns = [*with_trailing_slashes(routes), path("", include("taskito.contrib.sse.routes"))]
