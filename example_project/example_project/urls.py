from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from taskito.contrib.prometheus import metrics_view

urlpatterns = [
    path("", include("demo.urls")),
    path("admin/", admin.site.urls),
    # the OpenAPI schema of the REST API (drf-spectacular)
    path("tasks/schema", SpectacularAPIView.as_view(), name="schema"),
    # taskito's REST API (the admin's permissions by default), its progress streams included
    path("tasks/", include("taskito.contrib.rest.urls")),
    # Prometheus: staff with taskito.view_job, or TASKITO["METRICS_TOKEN"] as a bearer token
    path("metrics", metrics_view),
]
