from __future__ import annotations

from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("queue/", views.queue_summary, name="queue"),
    path("start/resize/", views.start_resize, name="start-resize"),
    path("start/checks/", views.start_checks, name="start-checks"),
    path("start/failing/", views.start_failing, name="start-failing"),
    path("start/fan-out/", views.start_fan_out, name="start-fan-out"),
]
