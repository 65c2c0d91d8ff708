"""`path("tasks/", include("taskito.contrib.sse.urls"))`: /tasks/jobs/<id>/progress alone
(the REST include already serves it)."""

from __future__ import annotations

from taskito.contrib.sse.routes import urlpatterns

app_name = "taskito_sse"

__all__ = ["app_name", "urlpatterns"]
