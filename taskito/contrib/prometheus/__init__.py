"""Prometheus series for taskito (the `prometheus` extra: prometheus_client)."""
