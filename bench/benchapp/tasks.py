"""The benchmark's task: as little work as a job can be."""

from __future__ import annotations

from taskito import queue


@queue.task()
def noop() -> None:
    return None


@queue.task()
def collect(values: list[None]) -> int:
    """A chord's body: how many results it got."""
    return len(values)
