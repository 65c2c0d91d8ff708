"""The test URLs plus `path("metrics", metrics_view)`, as a project mounts the scrape."""

from django.urls import path

from taskito.contrib.prometheus import metrics_view
from tests.urls import urlpatterns as base

urlpatterns = [path("metrics", metrics_view), *base]
