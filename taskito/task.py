"""What `@queue.task()` returns: the function, still callable inline, plus enqueue verbs."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from taskito.registry import TaskSpec
from taskito.result import JobResult
from taskito.twins import async_twin
from taskito.workflows import Signature

if TYPE_CHECKING:
    from taskito.queue import Queue

P = ParamSpec("P")
R = TypeVar("R")


class Task[**P, R]:
    """A registered task. Calling it runs the function here and now; `delay` queues it."""

    def __init__(self, queue: Queue, spec: TaskSpec) -> None:
        self.queue = queue
        self.spec = spec
        functools.update_wrapper(self, spec.func)

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.spec.func(*args, **kwargs)
        return result

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> JobResult:
        """Enqueue with these arguments and the task's default options."""
        return self.queue.enqueue(self.name, args, kwargs)

    def apply_async(self, args: Iterable[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> JobResult:
        """Enqueue with per-call options (priority, delay, eta, queue, max_retries, timeout,
        unique_key, depends_on, result_ttl, expires, metadata)."""
        return self.queue.enqueue(self.name, args, kwargs, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature for a workflow step; it receives its parent's result first."""
        return Signature(self.name, args, kwargs, queue_obj=self.queue)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it ignores its parent's result."""
        return Signature(self.name, args, kwargs, immutable=True, queue_obj=self.queue)

    def map(self, args_list: Iterable[Iterable[Any]], **options: Any) -> list[JobResult]:
        """Enqueue one job per argument tuple, all in one transaction."""
        return self.queue.enqueue_many(self.name, args_list, **options)

    # -- async twins: safe on an event loop (ASGI views, FastAPI); the write runs in Django's
    # sync thread, so inside a request it joins that request's connection and transaction.
    adelay = async_twin(delay)
    aapply_async = async_twin(apply_async)
    amap = async_twin(map)
