from __future__ import annotations

from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("enqueue/", views.enqueue_add),
    path("enqueue-sync/", views.enqueue_add_sync),
    path("enqueue-and-report/", views.enqueue_add_and_report),
]
