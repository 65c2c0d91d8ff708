"""The relay: progress that worker processes write to the job rows, published to this web
process's stream listeners.

django-eventstream wakes only listeners in the process that calls `send_event` (unless
EVENTSTREAM_REDIS carries events between processes), and a worker is another process. So,
without Redis, each web process runs one relay thread, started by its first stream (never
at import or in AppConfig.ready). Every TASKITO["SSE_POLL_INTERVAL"] seconds it reads the
status and progress of the jobs its open streams watch, in one query, and publishes what
changed. Its cost follows the number of watched jobs, not the queue's throughput; with no
stream open it sleeps and holds no database connection.
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.db import connections

from taskito.conf import taskito_settings
from taskito.contrib.endpoints import close_idle_connections, progress_event
from taskito.contrib.sse import channel_for
from taskito.queue import Queue
from taskito.serialization import loads

logger = logging.getLogger("taskito.sse")

State = tuple[int, int, str | None]  # (status code, progress, partial result's JSON)


def publish(job_id: uuid.UUID, state: State) -> None:
    """Send one progress event on the job's channel (to local listeners, or to every process
    when EVENTSTREAM_REDIS is set). It carries the partial result: the stream strips it for
    clients that did not ask for it."""
    from django_eventstream import send_event

    status, progress, partial = state
    send_event(channel_for(job_id), "message", progress_event(status, progress, loads(partial)))


class Relay:
    """Polls the watched jobs and publishes their changes; one per web process (`relay`)."""

    def __init__(self, queue: Queue | None = None) -> None:
        self._queue = queue
        self._lock = threading.Lock()
        self._watchers: dict[uuid.UUID, int] = {}
        self._last: dict[uuid.UUID, State] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: reads of the job rows so far (tests check that an idle relay makes none)
        self.polls = 0

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            from taskito import queue

            self._queue = queue
        return self._queue

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def watched(self) -> set[uuid.UUID]:
        with self._lock:
            return set(self._watchers)

    def watch(self, job_id: uuid.UUID, state: State) -> None:
        """A stream of this job opened, and its client was sent `state`. Starts the thread
        on first use."""
        with self._lock:
            self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
            self._last.setdefault(job_id, state)
            if not self.running:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="taskito-sse-relay",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def unwatch(self, job_id: uuid.UUID) -> None:
        with self._lock:
            left = self._watchers.get(job_id, 0) - 1
            if left > 0:
                self._watchers[job_id] = left
            else:
                self._watchers.pop(job_id, None)
                self._last.pop(job_id, None)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (it closes its database connection); the next watch() restarts
        it. For tests and shutdown."""
        thread = self._thread
        self._stopping = True
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def poll_once(self) -> int:
        """Read the watched jobs once and publish what changed; the number published."""
        ids = list(self.watched())
        if not ids:
            return 0
        states = self.queue.job_progress(ids, partial=True)
        self.polls += 1
        with self._lock:
            # A purged job is left alone: its streams notice on their own re-check.
            changed = [(jid, state) for jid in ids
                       if (state := states.get(jid)) is not None
                       and jid in self._watchers and self._last.get(jid) != state]
        for jid, state in changed:
            publish(jid, state)
            with self._lock:  # marked as sent only once sent: a failure is retried next poll
                if jid in self._watchers:
                    self._last[jid] = state
        return len(changed)

    def _run(self) -> None:
        try:
            while not self._stopping:
                if not self.watched():
                    self._close_connection()  # idle: hold no connection
                    self._wake.wait()
                    self._wake.clear()
                    continue
                try:
                    self.poll_once()
                except Exception:  # the database went away, say: log, reconnect, go on
                    logger.warning("progress relay: reading watched jobs failed",
                                   exc_info=True)
                    self._close_connection()
                self._wake.wait(taskito_settings.SSE_POLL_INTERVAL)
                self._wake.clear()
        finally:
            self._close_connection()

    def _close_connection(self) -> None:
        # the jobs' database, and the one django-eventstream's event storage may write to
        connections[self.queue.using].close()
        close_idle_connections()


#: this process's relay
relay = Relay()
