"""`path("tasks/", include("taskito.contrib.sse.urls"))`: /tasks/jobs/<id>/progress."""

from __future__ import annotations

from django.urls import path

from taskito.contrib.sse import views

app_name = "taskito_sse"

urlpatterns = [
    path("jobs/<str:job_id>/progress", views.progress, name="job_progress"),
]
