from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tasks/", include("taskito.contrib.rest.urls")),
    path("tasks/", include("taskito.contrib.sse.urls")),
]
