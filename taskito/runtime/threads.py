"""The worker's job threads: a fixed number of threads taking claimed jobs from one queue.

`concurrent.futures.ThreadPoolExecutor` made a Future, a work item and a lock round per job,
all on the worker's main thread, which also writes every claim and outcome: with short jobs
that was a quarter of its time. Here handing a job over is one `SimpleQueue.put` (a C call),
and the outcome goes back through the callback the worker gives (its own SimpleQueue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from queue import Empty, SimpleQueue

logger = logging.getLogger("taskito.worker")

_STOP = object()


class JobThreads[T]:
    """`size` threads, started as work first needs them, each calling `run(item)` for the
    items it takes, one at a time, in the order they were put."""

    def __init__(self, size: int, run: Callable[[T], None], *, name: str) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._run = run
        self._name = name
        self._items: SimpleQueue[object] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def put_many(self, items: Iterable[T]) -> None:
        """Queue items for the threads; starts threads (up to `size`) for them."""
        if self._closed:
            raise RuntimeError("the job threads are shut down")
        put = self._items.put
        count = 0
        for item in items:
            put(item)
            count += 1
        missing = min(self.size, len(self._threads) + count) - len(self._threads)
        for _ in range(missing):
            thread = threading.Thread(target=self._loop, daemon=True,
                                      name=f"{self._name}_{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _loop(self) -> None:
        get, run = self._items.get, self._run
        while True:
            item = get()
            if item is _STOP:
                return
            try:
                run(item)  # type: ignore[arg-type]
            except BaseException:  # `run` guards the job itself; this keeps the thread alive
                logger.exception("job thread %s: unexpected error", threading.current_thread().name)

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> list[T]:
        """Stop the threads once the queued items are done (`cancel`: once the running ones
        are; the items not started are returned). `wait` joins the threads."""
        self._closed = True
        dropped: list[T] = []
        if cancel:
            while True:
                try:  # a thread may take the last item between a look and a get
                    item = self._items.get_nowait()
                except Empty:
                    break
                if item is not _STOP:
                    dropped.append(item)  # type: ignore[arg-type]
        for _ in self._threads:
            self._items.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
        return dropped
