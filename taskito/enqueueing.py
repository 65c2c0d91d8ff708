"""Putting jobs in: `enqueue`, `enqueue_many` and the option checks they share."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskito import signals
from taskito.base import QueueBase
from taskito.conf import taskito_settings
from taskito.exceptions import DependencyError
from taskito.ids import new_id
from taskito.registry import TaskSpec, registry
from taskito.result import JobResult
from taskito.serialization import _dumps, dump_call, dumps
from taskito.states import JobStatus
from taskito.task import Task

EMPTY_ARGS = "[]"
EMPTY_KWARGS = "{}"
_NEVER = (JobStatus.DEAD, JobStatus.CANCELLED, JobStatus.FAILED)


@dataclass(slots=True)
class Plan:
    """Resolved options shared by every job of one enqueue call."""

    task_name: str
    queue: str
    priority: int
    max_retries: int
    timeout_ms: int | None
    soft_timeout_ms: int | None
    created_at: Any
    scheduled_at: Any
    expires_at: Any
    result_ttl: int | None
    metadata: str | None
    dependencies: list[uuid.UUID]


def _number(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'>' if positive else '>='} 0, not {value!r}")
    return float(value)


def _ms(name: str, value: Any) -> int | None:
    """Seconds to whole milliseconds, rounding up so a tiny timeout never becomes zero."""
    return None if value is None else math.ceil(_number(name, value, positive=True) * 1000)


def _aware(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {value!r}")
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _job_ids(value: Any) -> list[uuid.UUID]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    ids: list[uuid.UUID] = []
    for item in items:
        raw = item.id if isinstance(item, JobResult) else item
        try:
            ids.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            raise DependencyError(f"depends_on: {raw!r} is not a job id") from None
    return list(dict.fromkeys(ids))


class EnqueueMixin(QueueBase):
    """The writing half of Queue that puts jobs in."""

    def plan(self, task_name: str, spec: TaskSpec | None, *, priority: Any = None,
             delay: Any = None, eta: Any = None, queue: Any = None, max_retries: Any = None,
             timeout: Any = None, soft_timeout: Any = None, result_ttl: Any = None,
             expires: Any = None, metadata: Any = None, depends_on: Any = None,
             now: datetime | None = None) -> Plan:
        """Check and resolve per-call options against the task's and the queue's defaults."""
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"task name must be a non-empty string, not {task_name!r}")
        now = now or timezone.now()
        pick = _Picker(spec)
        queue = pick(queue, "queue")
        queue = self.default_queue if queue is None else queue
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"queue must be a non-empty string, not {queue!r}")
        priority = pick(priority, "priority")
        priority = self.default_priority if priority is None else priority
        max_retries = pick(max_retries, "max_retries")
        max_retries = self.default_max_retries if max_retries is None else max_retries
        for name, value in (("priority", priority), ("max_retries", max_retries)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {max_retries}")
        if delay is not None and eta is not None:
            raise ValueError("give delay or eta, not both")
        scheduled = now
        if delay is not None:
            scheduled = now + timedelta(seconds=_number("delay", delay))
        elif eta is not None:
            scheduled = max(now, _aware("eta", eta))
        timeout = pick(timeout, "timeout")
        timeout = self.default_timeout if timeout is None else timeout
        expires = pick(expires, "expires")
        expires_at = None
        if isinstance(expires, datetime):
            expires_at = _aware("expires", expires)
        elif expires is not None:
            expires_at = scheduled + timedelta(seconds=_number("expires", expires))
        ttl = pick(result_ttl, "result_ttl")
        ttl_s = None if ttl is None else round(_number("result_ttl", ttl))
        dialect = self.dialect
        return Plan(
            task_name=task_name, queue=queue, priority=priority, max_retries=max_retries,
            timeout_ms=_ms("timeout", timeout),
            soft_timeout_ms=_ms("soft_timeout", pick(soft_timeout, "soft_timeout")),
            created_at=dialect.dt(now), scheduled_at=dialect.dt(scheduled),
            expires_at=dialect.dt(expires_at), result_ttl=ttl_s,
            metadata=None if metadata is None else dumps(metadata, "metadata"),
            dependencies=_job_ids(depends_on),
        )

    def default_plan(self, task_name: str, spec: TaskSpec | None) -> Plan:
        """plan() for a call without options: the resolved defaults are cached per task (and
        dropped when the TASKITO setting changes); only the timestamps are new."""
        key = (task_name, taskito_settings.generation)
        cached = self._plans.get(key)
        if cached is None:
            cached = self.plan(task_name, spec)
            self._plans = {k: v for k, v in self._plans.items() if k[1] == key[1]}
            self._plans[key] = cached
        at = self.dialect.dt(timezone.now())
        return Plan(cached.task_name, cached.queue, cached.priority, cached.max_retries,
                    cached.timeout_ms, cached.soft_timeout_ms, at, at, None, cached.result_ttl,
                    None, [])

    def row(self, plan: Plan, job_id: uuid.UUID, args: str, kwargs: str,
            unique_key: str | None = None) -> tuple[Any, ...]:
        """One job's values in INSERT_COLUMNS order."""
        return (
            self.dialect.uid(job_id), plan.queue, plan.task_name, args, kwargs, 0,
            plan.priority, 0, 0, 0, plan.max_retries, plan.timeout_ms, plan.soft_timeout_ms,
            plan.created_at, plan.scheduled_at, plan.expires_at, plan.result_ttl, unique_key,
            plan.metadata, False, bool(plan.dependencies),
        )

    def enqueue(self, task_name: str | Task[Any, Any], args: Iterable[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, *, unique_key: str | None = None,
                **options: Any) -> JobResult:
        """Enqueue one job by task name (or Task); inside `transaction.atomic()` it joins that
        transaction. With `unique_key`, an active job holding the key is returned instead."""
        if isinstance(task_name, Task):
            task_name = task_name.name
        spec = registry.find(task_name) if isinstance(task_name, str) else None
        fast = not options and (spec is None or spec.expires is None)
        plan = self.default_plan(task_name, spec) if fast else self.plan(task_name, spec,
                                                                         **options)
        if spec is not None and spec.unique and unique_key is None:
            unique_key = f"{task_name}:{dumps([args or [], kwargs or {}], 'arguments')}"
        if unique_key is not None and (not isinstance(unique_key, str) or not unique_key
                                       or len(unique_key) > 255):
            raise ValueError("unique_key must be a non-empty string of at most 255 characters")
        if args or kwargs:
            args_json, kwargs_json = dump_call(task_name, args, kwargs)
        else:
            args_json, kwargs_json = EMPTY_ARGS, EMPTY_KWARGS
        if unique_key is None and not plan.dependencies:
            job_id = new_id()
            self.dialect.insert_jobs([self.row(plan, job_id, args_json, kwargs_json)])
            if signals.job_enqueued.has_listeners():
                self._after_enqueue(plan, [job_id])
            return self.handle(job_id)
        # Write first, then read: on SQLite a deferred transaction that reads first cannot wait
        # for the write lock. A bad dependency raises here and rolls the insert back.
        with transaction.atomic(using=self.using):
            if unique_key is None:
                job_id = new_id()
                self.dialect.insert_jobs([self.row(plan, job_id, args_json, kwargs_json)])
            else:
                job_id, created = self._insert_unique(plan, args_json, kwargs_json, unique_key)
                if not created:
                    return self.handle(job_id, created=False)
            self._check_dependencies(plan.dependencies)
            self._insert_dependencies(job_id, plan.dependencies)
            self._after_enqueue(plan, [job_id])
        return self.handle(job_id)

    def _insert_unique(self, plan: Plan, args_json: str, kwargs_json: str,
                       key: str) -> tuple[uuid.UUID, bool]:
        """Insert (id, True), or find the active job that holds `key` (its id, False).

        ON CONFLICT DO NOTHING never raises, so a caller's own transaction stays usable on
        PostgreSQL; if the holder finishes between our insert and our look-up, try again."""
        for _ in range(20):
            job_id = new_id()
            if self.dialect.insert_unique_job(self.row(plan, job_id, args_json, kwargs_json,
                                                       key)):
                return job_id, True
            holder = self.dialect.active_unique(key)
            if holder is not None:
                return holder, False
        raise RuntimeError(f"could not enqueue unique_key {key!r}: it keeps changing hands")

    def _check_dependencies(self, ids: Sequence[uuid.UUID]) -> None:
        if not ids:
            return
        found = dict(self.job_model.objects.using(self.using).filter(id__in=ids)
                     .values_list("id", "status"))
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise DependencyError(f"depends_on names unknown job(s): {', '.join(missing)}")
        for dep_id, status in found.items():
            if status in _NEVER:
                raise DependencyError(
                    f"dependency {dep_id} is {JobStatus(status).label} and will never complete"
                )

    def _insert_dependencies(self, job_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
        if not ids:
            return
        self.dialect.insert_dependencies(job_id, ids)

    def enqueue_many(self, task_name: str | Task[Any, Any], args_list: Iterable[Iterable[Any]],
                     kwargs_list: Iterable[Mapping[str, Any] | None] | None = None,
                     **options: Any) -> list[JobResult]:
        """Enqueue many jobs of one task (by name or Task) in one transaction (one multi-row
        insert)."""
        if isinstance(task_name, Task):
            task_name = task_name.name
        args_seq = list(args_list)
        kwargs_seq: list[Any] = [None] * len(args_seq) if kwargs_list is None else list(
            kwargs_list)
        if len(kwargs_seq) != len(args_seq):
            raise ValueError(f"kwargs_list has {len(kwargs_seq)} entries, args_list "
                             f"{len(args_seq)}")
        if not args_seq:
            return []
        spec = registry.find(task_name) if isinstance(task_name, str) else None
        plan = self.plan(task_name, spec, **options)
        rows: list[tuple[Any, ...]] = []
        ids: list[uuid.UUID] = []
        for args, kwargs in zip(args_seq, kwargs_seq, strict=True):
            try:
                args_json = _dumps(list(args)) if args else EMPTY_ARGS
                kwargs_json = _dumps(kwargs) if kwargs else EMPTY_KWARGS
                if not isinstance(kwargs or {}, Mapping):
                    raise TypeError("kwargs must be a mapping")
            except (TypeError, ValueError):
                args_json, kwargs_json = dump_call(task_name, args, kwargs)
            job_id = new_id()
            ids.append(job_id)
            rows.append(self.row(plan, job_id, args_json, kwargs_json))
        with transaction.atomic(using=self.using):  # write first (see enqueue)
            self.dialect.insert_jobs(rows)
            self._check_dependencies(plan.dependencies)
            for job_id in ids if plan.dependencies else ():
                self._insert_dependencies(job_id, plan.dependencies)
            self._after_enqueue(plan, ids)
        return [self.handle(job_id) for job_id in ids]

    def _after_enqueue(self, plan: Plan, ids: list[uuid.UUID]) -> None:
        """Wake workers and send `job_enqueued` once the enclosing transaction commits."""
        if not signals.job_enqueued.has_listeners():
            return

        def send() -> None:
            for job_id in ids:
                signals.send_guarded(signals.job_enqueued, sender=self.__class__,
                                     job_id=job_id, task_name=plan.task_name, queue=plan.queue)

        transaction.on_commit(send, using=self.using)


class _Picker:
    """Per-call value, else the task's default, else None."""

    def __init__(self, spec: TaskSpec | None) -> None:
        self.spec = spec

    def __call__(self, value: Any, name: str) -> Any:
        if value is not None or self.spec is None:
            return value
        return getattr(self.spec, name)
