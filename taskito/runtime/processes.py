"""`--pool process`: each job thread hands its jobs to a child process of its own, so that
CPU-bound tasks run in parallel and a job past its hard timeout can be killed."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from taskito.engine import ClaimedJob, Outcome
from taskito.runtime.executor import Executor

if TYPE_CHECKING:
    from taskito.queue import Queue

logger = logging.getLogger(__name__)

# A fresh interpreter per child ("spawn"): forking would share the parent's database
# connections and threads.
_context = multiprocessing.get_context("spawn")


def child_main(conn: Connection, settings_module: str, alias: str) -> None:
    """A child process: set Django up, then run the jobs it is sent, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()
    from taskito.queue import Queue

    executor = Executor(Queue(using=alias))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        outcome = executor(job)
        outcome.exception = None  # may not pickle; the parent's hooks get its text
        conn.send(outcome)


class _Child:
    def __init__(self, alias: str) -> None:
        self.conn, child_conn = _context.Pipe()
        self.process = _context.Process(
            target=child_main, name="taskito-child", daemon=True,
            args=(child_conn, os.environ.get("DJANGO_SETTINGS_MODULE", ""), alias))
        self.process.start()
        child_conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


class ProcessExecutor:
    """Called in a job thread like `Executor`, but runs the job in that thread's child
    process (started on first use, started again after it died or was killed)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.local_executor = Executor(queue)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.children: list[_Child] = []
        #: the child process running each job, so a timeout can kill it
        self.running: dict[Any, _Child] = {}

    def _child(self) -> _Child:
        child: _Child | None = getattr(self._local, "child", None)
        if child is None or not child.process.is_alive():
            child = _Child(self.queue.using)
            self._local.child = child
            with self._lock:
                self.children.append(child)
        return child

    def __call__(self, job: ClaimedJob) -> Outcome:
        child = self._child()
        started = time.perf_counter()
        self.running[job.id] = child
        try:
            child.conn.send(job)
            outcome: Outcome = child.conn.recv()
            return outcome
        except (EOFError, OSError):
            child.process.join(timeout=5)
            code = child.process.exitcode
            self._local.child = None
            return self.local_executor.failed_outside(
                job, RuntimeError(f"the worker's child process died (exit code {code})"),
                started)
        finally:
            self.running.pop(job.id, None)

    def kill(self, job_id: Any) -> None:
        """Kill the child process running `job_id` (its hard timeout has passed)."""
        child = self.running.get(job_id)
        if child is not None and child.process.is_alive():
            child.process.kill()

    def timed_out(self, job: ClaimedJob, started: float) -> Outcome:
        self.kill(job.id)
        return self.local_executor.timed_out(job, started)

    def close(self) -> None:
        with self._lock:
            children, self.children = self.children, []
        for child in children:
            child.stop()
