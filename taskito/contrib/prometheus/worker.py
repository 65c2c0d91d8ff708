"""The series of one worker process, served by `taskito_worker --metrics-port`.

Counted in the worker's main process from the outcomes it writes, which is also where the
outcomes of `--pool process` children arrive: no count is lost and prometheus_client's
multiprocess mode (a directory of shared files) is not needed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from taskito.engine import Outcome

#: seconds; a task may run from milliseconds to its timeout (300 s by default)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 600.0)


class WorkerMetrics:
    """The worker's observer (`Worker(observer=...)`): counts each written outcome on a
    registry of its own (not prometheus_client's global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runs = Counter("taskito_task_runs", "Attempts this worker finished, by outcome "
                            "(complete, retry, dead, cancelled)", ["task", "status"],
                            registry=self.registry)
        self.duration = Histogram("taskito_task_duration_seconds",
                                  "Wall time of the attempts this worker finished",
                                  ["task"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.retries = Counter("taskito_task_retries", "Failed attempts this worker scheduled "
                               "to run again", ["task"], registry=self.registry)
        self._children: dict[tuple[str, str], tuple[Counter, Histogram, Counter | None]] = {}
        self.busy = Gauge("taskito_worker_busy_slots", "Job slots (threads or child "
                          "processes) of this worker running a job", registry=self.registry)

    def __call__(self, outcomes: Sequence[Outcome], busy: int) -> None:
        children = self._children
        for outcome in outcomes:
            key = (outcome.job.task_name, outcome.kind)
            found = children.get(key)
            if found is None:
                found = children[key] = self._labelled(*key)
            runs, duration, retries = found
            runs.inc()
            duration.observe(outcome.wall_ms / 1000)
            if retries is not None:
                retries.inc()
        self.busy.set(busy)

    def _labelled(self, task: str, kind: str) -> tuple[Counter, Histogram, Counter | None]:
        """The series one (task, outcome) adds to, looked up once (`labels()` is slower)."""
        return (self.runs.labels(task, kind), self.duration.labels(task),
                self.retries.labels(task) if kind == "retry" else None)


def serve(port: int, host: str = "0.0.0.0") -> tuple[WorkerMetrics, WSGIServer]:
    """Serve a new WorkerMetrics over HTTP on host:port (port 0: any free port) from a
    daemon thread; returns it and the server (`server_port` is the port it listens on,
    `shutdown()` stops it). OSError when the port is taken."""
    metrics = WorkerMetrics()
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return metrics, server
