"""`TaskMiddleware`: user code around every task (audit, tenant context, tracing, timing),
and the guarded calls that keep it from changing a job's outcome or stopping a worker.

Global middleware come from `TASKITO["MIDDLEWARE"]` (dotted paths), per-task ones from
`@queue.task(middleware=[...])`. `before` and the enqueue/outcome hooks run global first,
then per-task; `after` runs in reverse.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from taskito.conf import taskito_settings
from taskito.exceptions import ConfigurationError
from taskito.serialization import loads

if TYPE_CHECKING:
    from taskito.registry import TaskSpec

logger = logging.getLogger(__name__)

Chain = tuple["TaskMiddleware", ...]


class TaskMiddleware:
    """Subclass and override the hooks you need; each default does nothing.

    Hooks run in the process that does the work: `on_enqueue` where the job is enqueued,
    `before`/`after`/`on_timeout` in the worker around the task (`after` also sees the
    task's exception), `on_retry`/`on_dead_letter`/`on_cancel` in the worker once that
    outcome is committed. An exception from any hook but `on_enqueue` is logged with the job
    id and changes nothing; `on_enqueue` raising refuses that enqueue."""

    def on_enqueue(self, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   options: dict[str, Any]) -> None:
        """Before a job is written; may change `options` (priority, delay, eta, queue,
        max_retries, timeout, soft_timeout, unique_key, metadata, expires, result_ttl)."""

    def before(self, ctx: TaskContext) -> None:
        """In the worker thread, just before the task runs."""

    def after(self, ctx: TaskContext, result: Any, error: BaseException | None) -> None:
        """In the worker thread, just after the task returned (`result`) or raised
        (`error`), before the outcome is decided."""

    def on_retry(self, ctx: TaskContext, error: BaseException, retry_count: int) -> None:
        """The attempt failed and the job is scheduled again (`retry_count` retries so
        far, this one included)."""

    def on_dead_letter(self, ctx: TaskContext, error: BaseException) -> None:
        """The attempt failed for good: the job is dead and a dead letter exists."""

    def on_timeout(self, ctx: TaskContext) -> None:
        """The attempt ran past its hard timeout (retry or dead letter follows)."""

    def on_cancel(self, ctx: TaskContext) -> None:
        """The running job stopped because someone cancelled it."""


class TaskContext:
    """The attempt a hook is about. Hooks may set their own attributes on it: `before` and
    `after` of one attempt see the same object."""

    def __init__(self, *, job_id: uuid.UUID, task_name: str, queue: str, args: Any,
                 kwargs: Any, attempt: int, retry_count: int, max_retries: int | None = None,
                 metadata_loader: Callable[[], str | None] | None = None) -> None:
        self.job_id = job_id
        self.task_name = task_name
        self.queue = queue
        self._args = args
        self._kwargs = kwargs
        #: attempts so far, this one included (1 on the first run)
        self.attempt = attempt
        self.retry_count = retry_count
        #: retries the job may spend in all (a failure with retry_count below it is retried,
        #: unless the task's retry_on / dont_retry_on say otherwise)
        self.max_retries = max_retries
        self._metadata_loader = metadata_loader

    def __repr__(self) -> str:
        return f"<TaskContext job={self.job_id} task={self.task_name} attempt={self.attempt}>"

    @property
    def args(self) -> tuple[Any, ...]:
        if isinstance(self._args, str):  # JSON as claimed: decoded on first use
            self._args = loads(self._args)
        return tuple(self._args or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        if isinstance(self._kwargs, str):
            self._kwargs = loads(self._kwargs)
        return dict(self._kwargs or {})

    @property
    def metadata(self) -> Any:
        """The job's metadata (read from the database on first use)."""
        if self._metadata_loader is not None:
            self._metadata = loads(self._metadata_loader())
            self._metadata_loader = None
        return getattr(self, "_metadata", None)


# -- resolution ----------------------------------------------------------------------------
def resolve(items: Iterable[Any], where: str) -> Chain:
    """Middleware instances from instances, classes or dotted paths; ConfigurationError
    naming `where` for anything else."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ConfigurationError(f"{where} must be a list of middleware, not {items!r}")
    resolved: list[TaskMiddleware] = []
    for item in items:
        value = item
        if isinstance(item, str):
            try:
                value = import_string(item)
            except ImportError as exc:
                raise ConfigurationError(f"{where}: cannot import {item!r}: {exc}") from None
        if isinstance(value, type) and issubclass(value, TaskMiddleware):
            value = value()
        if not isinstance(value, TaskMiddleware):
            raise ConfigurationError(f"{where}: {item!r} is not a taskito.TaskMiddleware "
                                     "(subclass, instance or dotted path)")
        resolved.append(value)
    return tuple(resolved)


def per_task(items: Iterable[Any]) -> Chain:
    """The `middleware=` option of @queue.task, resolved."""
    found = resolve(items, "task option middleware")
    if found:
        _global.per_task = True
    return found


class _Global:
    """TASKITO["MIDDLEWARE"] resolved once per settings generation."""

    generation = -1
    chain: Chain = ()
    #: set once a task declares its own middleware
    per_task = False


_global = _Global()


def global_chain() -> Chain:
    """The middleware of TASKITO["MIDDLEWARE"] (instantiated once per settings change)."""
    if _global.generation != taskito_settings.generation:
        paths = taskito_settings.get("MIDDLEWARE") or ()
        _global.chain = resolve(paths, 'TASKITO["MIDDLEWARE"]') if paths else ()
        _global.generation = taskito_settings.generation
    return _global.chain


def configured() -> bool:
    """Whether any middleware exists (global, or on any task): the finish path asks once
    per batch and skips its hooks otherwise."""
    return _global.per_task or bool(global_chain())


def chain(spec: TaskSpec | None) -> Chain:
    """Global then per-task middleware for a task (its spec; None when unknown here). With
    none configured this is an empty tuple, and callers skip every hook."""
    found = global_chain()
    own = spec.middleware if spec is not None else ()
    return found + own if found and own else found or own


def safe_chain(spec: TaskSpec | None, job_id: Any) -> Chain:
    """`chain` for the worker, inlined for the per-job path (with no middleware it costs
    two attribute compares); a global list that does not import (the system check reports
    it) is logged and run without."""
    own = spec.middleware if spec is not None else ()
    if _global.generation == taskito_settings.generation:
        found = _global.chain
    else:
        try:
            found = global_chain()
        except ConfigurationError as exc:
            logger.error("middleware not loaded job=%s error=%s", job_id, exc)
            return own
    if not found:
        return own
    return found + own if own else found


# -- calling -------------------------------------------------------------------------------
def on_enqueue(hooks: Chain, task_name: str, args: Any, kwargs: Mapping[str, Any] | None,
               options: dict[str, Any], unique_key: str | None
               ) -> tuple[dict[str, Any], str | None]:
    """Run every `on_enqueue` over a copy of the call's options (unique_key included); an
    exception refuses the enqueue. Returns the options and the unique key to use."""
    opts = dict(options)
    if unique_key is not None:
        opts["unique_key"] = unique_key
    call_args = tuple(args or ())
    call_kwargs = dict(kwargs or {})
    for hook in hooks:
        hook.on_enqueue(task_name, call_args, call_kwargs, opts)
    key = opts.pop("unique_key", None)
    return opts, key


def call(hooks: Chain, name: str, ctx: TaskContext, *args: Any, reverse: bool = False) -> None:
    """Call hook `name` of each middleware; one that raises is logged with the job id and
    the others still run."""
    for hook in reversed(hooks) if reverse else hooks:
        try:
            getattr(hook, name)(ctx, *args)
        except (Exception, SystemExit) as exc:
            logger.error("middleware failed middleware=%s hook=%s job=%s error=%s",
                         type(hook).__qualname__, name, ctx.job_id,
                         f"{type(exc).__name__}: {exc}", exc_info=exc)
