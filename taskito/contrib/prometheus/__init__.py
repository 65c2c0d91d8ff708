"""Prometheus for taskito (the `prometheus` extra: prometheus_client).

`path("metrics", metrics_view)` in urls.py serves the queue's state, read from the database
at scrape time in a fixed number of queries (Queue.overview); `TaskitoRouter(queue,
metrics=True)` serves the same on FastAPI. `taskito_worker --metrics-port` serves each worker
process's own series (`taskito.contrib.prometheus.worker`)."""

from taskito.contrib.prometheus.views import exposition, metrics_view

__all__ = ["exposition", "metrics_view"]
