from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
    path("admin/", admin.site.urls),
    # taskito's REST API (staff only by default) and its progress streams, both under /tasks/
    path("tasks/", include("taskito.contrib.rest.urls")),
    path("tasks/", include("taskito.contrib.sse.urls")),
]
