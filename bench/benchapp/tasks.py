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


@queue.task()
async def async_noop() -> None:
    return None


@queue.task()
async def async_sleep(seconds: float) -> None:
    """An I/O-bound job: waits like an HTTP call would, holding no thread."""
    import asyncio

    await asyncio.sleep(seconds)
