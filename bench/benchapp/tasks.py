"""The benchmark's task: as little work as a job can be."""

from __future__ import annotations

from taskito import queue


@queue.task()
def noop() -> None:
    return None
