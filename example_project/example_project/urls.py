from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
    path("admin/", admin.site.urls),
    # taskito's REST API (staff only by default), its progress streams included
    path("tasks/", include("taskito.contrib.rest.urls")),
]
