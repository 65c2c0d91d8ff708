"""`manage.py taskito_worker`: parse options, print a banner, run the worker."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIServer

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, NotSupportedError, connections

from taskito.conf import taskito_settings
from taskito.contrib.tasks_backend.utils import django_task_paths
from taskito.queue import queue as default_queue
from taskito.registry import registry
from taskito.runtime import reloader
from taskito.runtime.logs import apply_verbosity
from taskito.runtime.worker import Observer, Worker


class Command(BaseCommand):
    help = "Run a taskito worker: claim and run jobs until stopped (SIGTERM/SIGINT drain)."
    #: where --metrics-port serves, once started
    metrics_url: str | None = None
    metrics_server: WSGIServer | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queues", "-Q", default="",
                            help="comma-separated queues to take jobs from (default: all)")
        parser.add_argument("--concurrency", "-c", type=int, default=None,
                            help="jobs run at once, in threads (default: TASKITO CONCURRENCY)")
        parser.add_argument("--async-concurrency", type=int, default=None,
                            help="async def jobs run at once on the worker's event loop "
                                 "(default: TASKITO ASYNC_CONCURRENCY, 100)")
        parser.add_argument("--burst", action="store_true",
                            help="exit once no job is ready")
        parser.add_argument("--max-jobs", type=int, default=None,
                            help="exit after taking this many jobs")
        parser.add_argument("--poll-interval", type=float, default=None,
                            help="seconds between cheap change checks when idle")
        parser.add_argument("--worker-id", default=None, help="name shown in logs and admin")
        parser.add_argument("--pool", choices=("thread", "process"), default="thread",
                            help="run jobs in threads (default) or in child processes, one "
                                 "per --concurrency slot (CPU-bound tasks; a job past its "
                                 "hard timeout is killed)")
        parser.add_argument("--drain-timeout", type=float, default=None,
                            help="seconds to let running jobs finish after SIGTERM/SIGINT "
                                 "before putting them back to pending (default: TASKITO "
                                 "DRAIN_TIMEOUT, 30)")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="serve this process's Prometheus series over HTTP on this "
                                 "port, 0 for any free one (default: TASKITO METRICS_PORT, "
                                 "None: off; needs the prometheus extra)")
        parser.add_argument("--metrics-host", default=None,
                            help="address the metrics port listens on (default: TASKITO "
                                 "METRICS_HOST, 0.0.0.0)")
        parser.add_argument("--reload", action="store_true",
                            help="development only: restart when a Python file changes, "
                                 "after the running jobs finish (Django's autoreloader)")

    def handle(self, *args: Any, **options: Any) -> None:
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()] or None
        for name in ("concurrency", "async_concurrency", "max_jobs"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be >= 1")
        if options["poll_interval"] is not None and options["poll_interval"] <= 0:
            raise CommandError("--poll-interval must be > 0")
        if options["drain_timeout"] is not None and options["drain_timeout"] < 0:
            raise CommandError("--drain-timeout must be >= 0")
        port = options["metrics_port"]
        if port is None:
            port = taskito_settings.METRICS_PORT
        if port is not None and not 0 <= port <= 65535:
            raise CommandError(f"--metrics-port must be a TCP port (0 to 65535), not {port}")
        if options["reload"] and not reloader.is_reloader_child():
            raise SystemExit(reloader.supervise())  # the worker runs in a child process
        # -v 0/1/2/3 -> WARNING/INFO/DEBUG/DEBUG, unless LOGGING configures taskito's loggers
        apply_verbosity(options["verbosity"])
        observer = None
        if port is not None:
            observer = self._serve_metrics(port, options["metrics_host"]
                                           or taskito_settings.METRICS_HOST)
        worker = Worker(default_queue, queues=queues, concurrency=options["concurrency"],
                        burst=options["burst"], max_jobs=options["max_jobs"],
                        worker_id=options["worker_id"], poll_interval=options["poll_interval"],
                        drain_timeout=options["drain_timeout"], pool=options["pool"],
                        observer=observer, async_concurrency=options["async_concurrency"])
        try:
            processed = self._run(worker, reload=options["reload"])
        finally:
            if self.metrics_server is not None:
                self.metrics_server.shutdown()
                self.metrics_server.server_close()
        if worker.abandoned or worker.stuck:
            # Threads still run the jobs that were handed back; they cannot be stopped, and
            # their late results are fenced off, so leave without waiting for them.
            self.stderr.write(f"taskito worker {worker.worker_id}: drain timeout, "
                              f"{worker.abandoned} running jobs put back to pending")
            self.stdout.flush()
            self.stderr.flush()
            os._exit(1)
        if options["verbosity"] >= 1:
            self.stdout.write(f"taskito worker {worker.worker_id} stopped after {processed} "
                              "jobs")

    def _run(self, worker: Worker, *, reload: bool) -> int:
        if reload:  # the signals are taken over once Django's reloader runs
            self._banner(worker)
            return reloader.run_reloading(worker, lambda: self._install_signals(worker))
        self._install_signals(worker)
        self._banner(worker)
        return worker.run()

    def _serve_metrics(self, port: int, host: str) -> Observer:
        """Start the metrics server (its own thread); a one-line CommandError when
        prometheus_client is missing or the port cannot be taken."""
        try:
            from taskito.contrib.prometheus.worker import serve
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("prometheus_client"):
                raise
            raise CommandError("--metrics-port needs prometheus_client: pip install "
                               "'django-taskito[prometheus]'") from None
        try:
            metrics, self.metrics_server = serve(port, host)
        except OSError as exc:
            raise CommandError(f"--metrics-port: cannot listen on {host}:{port}: "
                               f"{exc.strerror or exc}") from None
        self.metrics_url = f"http://{host}:{self.metrics_server.server_port}/metrics"
        return metrics

    def _check_database(self) -> None:
        alias = taskito_settings.DATABASE
        try:
            default_queue.dialect.probe_tables()
        except NotSupportedError as exc:  # e.g. a MariaDB/MySQL server without SKIP LOCKED
            raise CommandError(f"taskito cannot use database {alias!r}: {exc}") from None
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"taskito cannot use database {alias!r}: {first} "
                "(is it reachable, and did you run `python manage.py migrate`?)") from None

    def _install_signals(self, worker: Worker) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if worker.stopping:
                os._exit(128 + signum)  # second signal: leave now, the lifeline recovers jobs
            # Stop before saying so: a second signal can land while the message is written,
            # and its handler then runs nested inside this one; it must already see
            # `stopping` and exit, as the message promises. (The write may also raise, e.g.
            # a reentrant call on a buffered stderr; the worker is stopping all the same.)
            worker.stop()
            self.stderr.write(f"taskito: {signal.Signals(signum).name} received, finishing "
                              "running jobs (send again to exit at once)")

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def _banner(self, worker: Worker) -> None:
        if self.verbosity < 1:
            return
        alias = worker.queue.using
        names = registry.names()
        django_tasks = django_task_paths()
        if names:
            tasks = _first(names)
        elif django_tasks is not None:
            tasks = "none registered with @queue.task"
        else:
            tasks = "none found - define them in <app>/tasks.py"
        lines = [
            f"taskito worker {worker.worker_id}",
            f"  database:    {alias} ({connections[alias].vendor})",
            f"  queues:      {', '.join(worker.queues) if worker.queues else 'all'}",
            f"  concurrency: {worker.concurrency} "
            f"{'threads' if worker.pool == 'thread' else 'child processes'}"
            f"{'  (burst: exit when empty)' if worker.burst else ''}",
            f"  async:       {worker.async_concurrency} coroutines on one event loop"
            if worker.pool == "thread" else
            "  async:       in each child process's own event loop",
            f"  tasks ({len(names)}): {tasks}",
        ]
        if self.metrics_url:
            lines.append(f"  metrics:     {self.metrics_url}")
        if django_tasks is not None:
            found = f"{_first(django_tasks)}; " if django_tasks else ""
            lines.append(f"  django tasks ({len(django_tasks)}): {found}any @task is imported "
                         "by its module path when a job names it")
        self.stdout.write("\n".join(lines))

    def execute(self, *args: Any, **options: Any) -> Any:
        self.verbosity = options.get("verbosity", 1)
        # Before Django's system checks: on MariaDB/MySQL they open a connection, and a
        # database that cannot be reached would end in their traceback, not one line.
        self._check_database()
        return super().execute(*args, **options)


def _first(names: Sequence[str], count: int = 20) -> str:
    """The first `count` names, comma-separated, and how many more there are."""
    more = f" (+{len(names) - count} more)" if len(names) > count else ""
    return ", ".join(names[:count]) + more
