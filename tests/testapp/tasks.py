"""Tasks used by the tests (found by autodiscovery, like a user's app)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from taskito import current_job, queue
from tests.testapp.middleware import Recorder


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


@queue.task(max_retries=0)
def block_until(release_path: str, started_path: str, timeout: float = 30.0) -> str:
    """Touch `started_path`, then wait (up to `timeout` s) for `release_path` to appear.

    Used by process tests to hold a job in flight while they signal the worker."""
    import time

    with open(started_path, "w") as fh:
        fh.write(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not os.path.exists(release_path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_path} did not appear within {timeout} s")
        time.sleep(0.01)
    return "released"


# -- used by tests/core and tests/runtime ------------------------------------------------------

#: threading.Events that let a threaded-worker test hold a job in flight, by name
GATES: dict[str, threading.Event] = {}
STARTED: dict[str, threading.Event] = {}


@queue.task(max_retries=0)
def wait_for_gate(name: str) -> str:
    """Set STARTED[name], then block until the test sets GATES[name] (10 s at most)."""
    STARTED[name].set()
    if not GATES[name].wait(10):
        raise TimeoutError(f"gate {name!r} was never opened")
    return name


@queue.task(max_retries=4, retry_backoff=0.5, priority=7, queue="configured", timeout=60,
            soft_timeout=30, expires=600, result_ttl=120)
def configured() -> str:
    return "ok"


@queue.task(max_retries=2, retry_delays=[0])
def fails_first_attempt() -> int:
    """Fails on the first attempt; on a retry returns the retry count it saw."""
    if current_job.retry_count == 0:
        raise Retryable("first attempt")
    return current_job.retry_count


@queue.task()
def progress_then_read(value: int) -> int:
    """Record progress, then read it back from the job row."""
    current_job.update_progress(value)
    job = queue.get_job(current_job.id)
    return job.progress if job is not None else -1


@queue.task(max_retries=3, retry_delays=[60])
def retries_in_a_minute() -> None:
    raise Retryable("again in a minute")


@queue.task(unique=True)
def unique_by_args(n: int) -> int:
    return n


@queue.task(max_retries=0, soft_timeout=7, result_ttl=45, expires=120)
def dies_with_options() -> None:
    raise Fatal("dies")


@queue.task(unique=True)
def unique_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


@queue.task(max_retries=3, retry_delays=[0])
def logs_extra(message: str, extra: dict[str, Any]) -> None:
    current_job.log(message, level="warning", extra=extra)


@queue.task(max_retries=0)
def spins_then_checks_timeout(seconds: float) -> str:
    """Busy for `seconds` (no sleep), then ask whether the soft timeout has passed."""
    import time

    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass
    current_job.check_timeout()
    return "in time"


@queue.task(max_retries=1, retry_delays=[0])
def exits() -> None:
    raise SystemExit(3)


@queue.task(max_retries=1, retry_delays=[0])
def waits_on_other_job(other_id: str) -> Any:
    """Raises TaskCancelledError for *another* job: this job's attempt fails, it is not
    cancelled."""
    other = queue.get_job(other_id)
    assert other is not None
    return other.result(timeout=1)


@queue.task(max_retries=0)
def count_execution(tag: str) -> None:
    """Insert one row per execution into taskito_test_executions on the task thread's own
    connection (the table is created by the test)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO taskito_test_executions (tag) VALUES (%s)", [tag])


@queue.task(max_retries=3, retry_delays=[0])
def record_slow(path: str, value: str, seconds: float = 0.005) -> None:
    """Append a line per execution (O_APPEND, one write) after a short pause."""
    import time

    time.sleep(seconds)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{value}\n".encode())
    finally:
        os.close(fd)


@queue.task(max_retries=2, retry_delays=[0])
def poison() -> None:
    """Kills whichever worker runs it."""
    os.kill(os.getpid(), signal.SIGKILL)


@queue.task(max_retries=1, retry_delays=[0])
def first_attempt_waits(started_dir: str, release_path: str) -> int:
    """The first attempt waits for `release_path`; every attempt returns its worker's pid."""
    import time
    from pathlib import Path

    Path(started_dir, str(os.getpid())).touch()
    if current_job.retry_count == 0:
        deadline = time.monotonic() + 60
        while not os.path.exists(release_path) and time.monotonic() < deadline:
            time.sleep(0.01)
    return os.getpid()


@queue.periodic(cron="*/5 * * * *", name="tests.every-five-minutes", args=(2, 3))
def periodic_add(a: int, b: int) -> int:
    return a + b


@queue.task(max_retries=0, timeout=0.2)
def overruns(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "finished late"


@queue.task(rate_limit="2/m")
def limited(n: int) -> int:
    return n


@queue.task(max_concurrent=1, rate_limit="2/m")
def exclusive_limited(n: int) -> int:
    return n


@queue.task(max_concurrent=1, max_retries=1, retry_delays=[0])
def exclusive(fail: bool = False) -> str:
    if fail:
        raise Retryable("failing on purpose")
    return "alone"


@queue.task(max_retries=0)
def whose_pid() -> int:
    return os.getpid()


@queue.task(max_retries=0, timeout=0.5)
def hangs() -> None:
    import time

    time.sleep(60)


@queue.task(max_retries=1, retry_delays=[0])
def exits_hard() -> None:
    os._exit(3)


@queue.task(max_retries=0)
def runs_until_cancelled(started_path: str, timeout: float = 30.0) -> None:
    """Touch `started_path`, then check for a cancel request every 10 ms (`timeout` s at most;
    tests/process/test_worker_metrics.py)."""
    Path(started_path).touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current_job.check_cancelled()
        time.sleep(0.01)
    raise TimeoutError("never cancelled")


@queue.task(max_retries=0)
def current_span() -> str:
    """The span current while the task runs, as "<trace id>-<span id>" (tests/contrib)."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}-{context.span_id:016x}"


@queue.task(max_retries=0)
def progress_steps(release_dir: str, steps: int) -> int:
    """Report progress (and a partial result {"step": i}) in `steps` steps; after each,
    wait (30 s at most) for the file
    `<release_dir>/<step>` that the test creates once it has seen that progress."""
    for i in range(1, steps + 1):
        current_job.update_progress(int(i * 100 / steps), partial={"step": i})
        release = Path(release_dir) / str(i)
        deadline = time.monotonic() + 30
        while not release.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"step {i} was never released")
            time.sleep(0.01)
    return steps


@queue.task(max_retries=1, retry_delays=[0], middleware=[Recorder("task"),
                                                        "tests.testapp.middleware.Second"])
def with_middleware(value: Any, fail: bool = False) -> Any:
    if fail:
        raise Retryable(f"failing with {value!r}")
    return value


@queue.task()
def enqueues_add(a: int, b: int) -> int:
    """Enqueues add(a, b) and returns its result (in test mode it has run already)."""
    return add.delay(a, b).result(timeout=5)


# -- workflows (tests/core/test_workflows.py, tests/process/test_workflows.py) -------------------

@queue.task()
def mul(a: int, b: int) -> int:
    return a * b


@queue.task()
def tsum(values: list[int], extra: int = 0) -> int:
    return sum(values) + extra


@queue.task(max_retries=0)
def fails_unless(path: str, value: int) -> int:
    """Fails until the file `path` exists, then returns `value` (a step that can be fixed)."""
    if not os.path.exists(path):
        raise Fatal(f"{path} is missing")
    return value


@queue.task(max_retries=3, retry_delays=[0],
            circuit_breaker={"threshold": 3, "window": 60, "cooldown": 2})
def guarded(switch: str) -> str:
    """Calls a "dependency" that is down while the file `switch` says "fail"."""
    if Path(switch).read_text().strip() == "fail":
        raise RuntimeError("upstream down")
    return "ok"


# -- async tasks on the worker's event loop (tests/runtime/test_async_worker.py) -----------
class AsyncGate:
    """Shared by the async tasks of one in-process test: how many run, the loop they run
    on, and an asyncio.Event (made on that loop) that releases them."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.loop: Any = None
        self.event: Any = None
        self.lock = threading.Lock()

    def release(self) -> None:
        if self.loop is not None and self.event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.event.set)


ASYNC_GATE = AsyncGate()


@queue.task(max_retries=0)
async def await_gate() -> str:
    import asyncio

    gate = ASYNC_GATE
    if gate.event is None:
        gate.loop, gate.event = asyncio.get_running_loop(), asyncio.Event()
    with gate.lock:
        gate.running += 1
        gate.peak = max(gate.peak, gate.running)
    try:
        await asyncio.wait_for(gate.event.wait(), 30)
    finally:
        with gate.lock:
            gate.running -= 1
    return threading.current_thread().name


@queue.task(max_retries=0)
async def async_sleep(seconds: float) -> float:
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


@queue.task(max_retries=0)
async def async_noop() -> None:
    return None


@queue.task(max_retries=0, timeout=0.3)
async def async_sleeps_past_timeout(path: str) -> None:
    import asyncio

    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        Path(path).write_text("cancelled")  # the coroutine itself was stopped
        raise


@queue.task(max_retries=0)
async def async_waits_for_cancel(started_path: str) -> None:
    import asyncio

    Path(started_path).write_text("started")
    await asyncio.sleep(30)


@queue.task(max_retries=2, retry_delays=[0])
async def async_always_fails() -> None:
    raise Retryable("async boom")


@queue.task(max_retries=0)
async def async_reports(steps: int) -> str:
    import asyncio

    for i in range(steps):
        current_job.update_progress(int((i + 1) * 100 / steps), partial={"done": i + 1})
        current_job.log(f"async step {i + 1}", extra={"i": i})
        await asyncio.sleep(0.05)
    current_job.check_cancelled()
    return "done"


@queue.task(max_retries=0)
async def async_blocks_loop(seconds: float) -> str:
    time.sleep(seconds)  # what not to do: blocks every coroutine on the loop
    return "blocked"


@queue.task(max_retries=0)
async def async_orm(name: str) -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import Group

    group = await Group.objects.acreate(name=name)
    found = await Group.objects.aget(pk=group.pk)
    count = await sync_to_async(Group.objects.filter(name=name).count)()
    return {"name": found.name, "count": count}


@queue.task(max_retries=0)
async def async_soft_timeout(seconds: float) -> str:
    import asyncio

    await asyncio.sleep(seconds)
    current_job.check_timeout()
    return "in time"


@queue.task(max_retries=0)
async def async_rendezvous(directory: str, expected: int, timeout: float = 60.0) -> int:
    """Across processes: mark this job as running (a file), then wait until `expected` jobs
    are running at once; raises if that never happens within `timeout`."""
    import asyncio

    Path(directory, str(current_job.id)).touch()
    deadline = time.monotonic() + timeout
    while len(os.listdir(directory)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(directory))} of {expected} ran at once")
        await asyncio.sleep(0.02)
    return expected


@queue.task(max_retries=0)
async def async_waits_for_file(started_dir: str, release_path: str) -> str:
    import asyncio

    Path(started_dir, str(current_job.id)).touch()
    while not Path(release_path).exists():
        await asyncio.sleep(0.02)
    return "released"


@queue.task(max_retries=0, middleware=[Recorder("async"), "tests.testapp.middleware.SetsTenant"])
async def async_with_middleware(value: int) -> dict[str, Any]:
    from tests.testapp.middleware import TENANT

    return {"value": value, "tenant": TENANT.get(None), "job": str(current_job.id)}


LIMITED = AsyncGate()


@queue.task(max_retries=0, max_concurrent=2)
async def async_limited() -> None:
    import asyncio

    with LIMITED.lock:
        LIMITED.running += 1
        LIMITED.peak = max(LIMITED.peak, LIMITED.running)
    await asyncio.sleep(0.1)
    with LIMITED.lock:
        LIMITED.running -= 1


@queue.task(max_retries=0)
async def async_checks_cancel(started_path: str) -> str:
    import asyncio

    Path(started_path).write_text("started")
    for _ in range(300):
        current_job.check_cancelled()
        await asyncio.sleep(0.02)
    return "not cancelled"
