"""A project that includes only the REST API (which serves the progress stream too)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("api/", include("taskito.contrib.rest.urls"))]
