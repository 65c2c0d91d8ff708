"""Demo tasks. The worker finds them because it imports every installed app's `tasks`."""

from __future__ import annotations

import asyncio
import time

from taskito import current_job, queue


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(max_retries=2, retry_backoff=0.5)
def always_fails(reason: str) -> None:
    raise RuntimeError(reason)


@queue.task()
def resize_image(name: str, steps: int = 10) -> dict:
    for i in range(steps):
        time.sleep(0.2)  # pretend work
        # partial: the result so far, which the page's stream asks for (?partial=1)
        current_job.update_progress(int((i + 1) * 100 / steps),
                                    partial={"tiles_done": i + 1, "tiles": steps})
        current_job.log(f"step {i + 1}/{steps}")
    return {"name": name, "size": [800, 600]}


@queue.task()
def word_count(text: str) -> int:
    """One member of the fan-out: count the words of one document."""
    time.sleep(0.1)  # pretend work
    return len(text.split())


@queue.task()
def total_words(counts: list[int]) -> dict:
    """The chord's body: gets every member's count, in order, once all are done."""
    return {"documents": len(counts), "words": sum(counts), "per_document": counts}


@queue.task(timeout=30)
async def check_services(names: list[str]) -> dict:
    """An async task: it runs on the worker's event loop and holds no thread while it waits,
    so a worker runs a hundred of these at once. Real code would `await` an
    httpx.AsyncClient call where this sleeps (see the README's "Async tasks")."""
    status: dict[str, str] = {}

    async def check(name: str) -> None:
        await asyncio.sleep(0.5)  # pretend network round trip
        status[name] = "up"
        current_job.update_progress(len(status) * 100 // len(names), partial=status)

    await asyncio.gather(*(check(name) for name in names))
    current_job.log(f"checked {len(names)} services")
    return status
