"""`taskito_worker --reload` (development only): Django's autoreloader restarts the worker when
a Python file changes, after the jobs it is running have finished.

Two processes, as with `runserver`: a parent that starts the worker process again each time it
exits for a reload (exit code 3), and the worker process, where Django's `run_with_reloader`
runs the worker in a thread while its main thread watches the files. Unlike runserver's parent,
ours forwards SIGTERM/SIGINT to the worker process and waits for it to drain, and starts it
in a process group of its own so that Ctrl-C reaches it once, through the parent."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from django.utils import autoreload

from taskito.runtime.worker import Worker

logger = logging.getLogger("taskito.worker")

#: the exit code with which Django's reloader asks for a restart
RELOAD_EXIT = 3


def is_reloader_child() -> bool:
    """True inside the process that the reloading parent started."""
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


def supervise() -> int:
    """The parent: run this command again in a child process until it exits for another
    reason than a reload; forward SIGTERM and SIGINT to it. Returns its exit code."""
    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    args = autoreload.get_child_arguments()
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    while True:
        child = subprocess.Popen(args, env=env, close_fds=False, process_group=0)
        if stopping:  # a signal came while no child was there to receive it
            child.send_signal(signal.SIGTERM)
        code = child.wait()
        if code != RELOAD_EXIT or stopping:
            return code


class _Run:
    """The worker process's side of a reloading run."""

    def __init__(self, worker: Worker, install_signals: Callable[[], None]) -> None:
        self.worker = worker
        self.install_signals = install_signals
        self.ready = threading.Event()
        self.reloader: autoreload.BaseReloader | None = None
        self.thread: threading.Thread | None = None
        self.reloading = False
        self.error: BaseException | None = None

    def started(self, sender: autoreload.BaseReloader, **kwargs: Any) -> None:
        """autoreload_started, in the main thread: take over the signals, then let the
        worker start (Django's reloader had set SIGTERM to exit at once)."""
        self.reloader = sender
        self.install_signals()
        logger.info("reload: watching for code changes with %s worker=%s",
                    type(sender).__name__, self.worker.worker_id)
        self.ready.set()

    def changed(self, sender: Any, file_path: Path, **kwargs: Any) -> None:
        """file_changed, in the main thread: on a Python file, stop the worker and wait until
        its running jobs are finished; returning None lets Django restart the process."""
        if Path(file_path).suffix != ".py":
            return  # templates and translations: Django's own receivers handle them
        logger.info("reload: %s changed, finishing running jobs first worker=%s", file_path,
                    self.worker.worker_id)
        self.reloading = True
        self.worker.stop_event.set()
        if self.thread is not None:
            self.thread.join()

    def main(self) -> None:
        """The worker thread."""
        self.thread = threading.current_thread()
        self.ready.wait()
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc
        finally:
            if not self.reloading and self.reloader is not None:
                self.reloader.stop()  # stopped by a signal or --burst: leave the watch loop

    def watch_parent(self, parent: int) -> None:
        """Stop the worker if the reloading parent died (it would never stop us)."""
        while not self.worker.stop_event.wait(1.0):
            if os.getppid() != parent:
                logger.warning("reload: the parent process is gone; stopping")
                self.worker.stop_event.set()


def run_reloading(worker: Worker, install_signals: Callable[[], None]) -> int:
    """In the child: run `worker` under Django's autoreloader; returns the jobs it finished
    (a reload leaves this process with exit code 3 instead)."""
    run = _Run(worker, install_signals)
    autoreload.autoreload_started.connect(run.started, weak=False)
    autoreload.file_changed.connect(run.changed, weak=False)
    threading.Thread(target=run.watch_parent, args=(os.getppid(),), daemon=True,
                     name="taskito-reload-parent").start()
    try:
        autoreload.run_with_reloader(run.main)
    finally:
        autoreload.autoreload_started.disconnect(run.started)
        autoreload.file_changed.disconnect(run.changed)
        worker.stop_event.set()  # ends watch_parent
    if run.error is not None:
        raise run.error
    return worker.processed
