"""The progress stream's URL patterns, in no namespace of their own: taskito.contrib.rest.urls
includes them by name (so one include gives every endpoint, "taskito:job_progress"), and
taskito.contrib.sse.urls serves them alone. The stream builds on the REST API's permission
classes, so SSE imports REST and never the other way round."""

from __future__ import annotations

from django.urls import path

from taskito.contrib.routing import with_trailing_slashes
from taskito.contrib.sse import views

urlpatterns = with_trailing_slashes([
    path("jobs/<str:job_id>/progress", views.progress, name="job_progress"),
])
