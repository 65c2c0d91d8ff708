"""Result waits (`GET /jobs/{id}/result?timeout=N`) that hold no thread: each waiter is a
future on the event loop, and one poller per loop reads the status of every waited-for job
in one query per interval. Fifty waits cost one query every RESULT_POLL seconds, not fifty
threads (or fifty connections). A per-process cap refuses waits past
TASKITO["RESULT_WAIT_LIMIT"] with 503 and Retry-After."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from taskito.conf import taskito_settings
from taskito.queue import Queue
from taskito.states import TERMINAL

logger = logging.getLogger(__name__)

#: seconds between the poller's reads of the waited-for jobs
RESULT_POLL = 0.1

#: runs a blocking function off the event loop (a pool thread it leaves again at once)
OffLoop = Callable[..., Awaitable[Any]]
Key = tuple[Queue, uuid.UUID]


class WaitLimitReached(Exception):
    """More result waits than TASKITO["RESULT_WAIT_LIMIT"] in this process."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} result waits are in progress in this server process; "
                         "retry later or ask with timeout=0")


class WaitSlots:
    """The per-process count of result waits in progress, capped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        limit = int(taskito_settings.RESULT_WAIT_LIMIT)
        with self._lock:
            if self.active >= limit:
                raise WaitLimitReached(limit)
            self.active += 1
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1


class LoopPoller:
    """The waiters of one event loop and the task that polls for them."""

    def __init__(self) -> None:
        self.waiters: dict[Key, set[asyncio.Future[bool]]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, key: Key, future: asyncio.Future[bool], off_loop: OffLoop) -> None:
        self.waiters.setdefault(key, set()).add(future)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run(off_loop))

    def stop(self) -> None:
        """Cancel the polling task (it has no waiter left)."""
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def discard(self, key: Key, future: asyncio.Future[bool]) -> None:
        futures = self.waiters.get(key)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self.waiters[key]

    async def _run(self, off_loop: OffLoop) -> None:
        try:
            await self._poll(off_loop)
        finally:
            if self.task is asyncio.current_task():
                self.task = None  # a finished task keeps its loop alive: drop it

    async def _poll(self, off_loop: OffLoop) -> None:
        while self.waiters:
            await asyncio.sleep(RESULT_POLL)
            by_queue: dict[Queue, list[uuid.UUID]] = {}
            for queue, job_id in list(self.waiters):
                by_queue.setdefault(queue, []).append(job_id)
            for queue, ids in by_queue.items():
                try:
                    states = await off_loop(queue.job_progress, ids)
                except Exception:  # the waits run out instead; the next poll tries again
                    logger.warning("result wait poll failed jobs=%d", len(ids), exc_info=True)
                    continue
                for job_id in ids:
                    state = states.get(job_id)
                    if state is None or state[0] in TERMINAL:
                        self._wake((queue, job_id), state is not None)

    def _wake(self, key: Key, exists: bool) -> None:
        for future in self.waiters.pop(key, set()):
            if not future.done():
                future.set_result(exists)


slots = WaitSlots()
#: the poller of each loop that has waits in progress (removed with its last wait; weak, so
#: a loop that closes mid-wait is not kept either)
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPoller] = (
    weakref.WeakKeyDictionary())


async def until_terminal(queue: Queue, job_id: uuid.UUID, timeout: float,
                         off_loop: OffLoop) -> bool:
    """Wait up to `timeout` seconds for the job to reach a terminal status (or to run out);
    False if the job disappeared meanwhile. Takes a slot (WaitLimitReached past the cap)."""
    loop = asyncio.get_running_loop()
    with slots.take():
        poller = _pollers.get(loop)
        if poller is None:
            poller = _pollers[loop] = LoopPoller()
        future: asyncio.Future[bool] = loop.create_future()
        poller.add((queue, job_id), future, off_loop)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return True
        finally:
            poller.discard((queue, job_id), future)
            if not poller.waiters:  # the last wait of this loop: let the loop go
                poller.stop()
                if _pollers.get(loop) is poller:
                    del _pollers[loop]
