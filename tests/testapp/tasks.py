"""Tasks used by the tests (found by autodiscovery, like a user's app)."""

from __future__ import annotations

import os
import signal
from typing import Any

from taskito import current_job, queue


class Retryable(Exception):
    pass


class Fatal(Exception):
    pass


@queue.task()
def noop() -> None:
    return None


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(name="tests.echo")
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@queue.task(max_retries=2, retry_delays=[0])
def always_fails(message: str = "boom") -> None:
    raise Retryable(message)


@queue.task(max_retries=5, retry_delays=[0], dont_retry_on=[Fatal])
def fatal() -> None:
    raise Fatal("not worth retrying")


@queue.task(max_retries=3, retry_delays=[0], retry_on=[Retryable])
def only_retries_retryable(kind: str) -> None:
    raise Retryable(kind) if kind == "retryable" else ValueError(kind)


@queue.task(max_retries=1, retry_delays=[0])
def returns_object() -> object:
    return object()


@queue.task()
def reports(steps: int) -> str:
    for i in range(steps):
        current_job.update_progress(int((i + 1) * 100 / steps))
        current_job.log(f"step {i + 1}", extra={"i": i})
    return "done"


@queue.task(max_retries=0)
def cancellable() -> None:
    current_job.check_cancelled()


@queue.task()
async def async_add(a: int, b: int) -> int:
    return a + b


@queue.task()
def who_am_i() -> dict[str, Any]:
    return {"id": str(current_job.id), "task": current_job.task_name,
            "queue": current_job.queue_name, "retry": current_job.retry_count}


@queue.task(queue="emails", priority=3)
def send_email(to: str) -> str:
    return f"sent to {to}"


@queue.task(max_retries=3, retry_delays=[0])
def flaky(counter_file: str, fail_times: int) -> int:
    """Fails `fail_times` times (counted in a file), then succeeds."""
    count = 0
    if os.path.exists(counter_file):
        with open(counter_file) as fh:
            count = int(fh.read())
    with open(counter_file, "w") as fh:
        fh.write(str(count + 1))
    if count < fail_times:
        raise Retryable(f"attempt {count + 1}")
    return count + 1


@queue.task()
def record(path: str, value: str) -> None:
    """Append a line to a file (used by process tests to count executions)."""
    with open(path, "a") as fh:
        fh.write(value + "\n")


@queue.task(max_retries=0)
def kill_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
