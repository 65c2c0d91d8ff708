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

from taskito import middleware, signals
from taskito.base import QueueBase
from taskito.conf import taskito_settings
from taskito.db import Dialect
from taskito.exceptions import DependencyError
from taskito.ids import new_id
from taskito.registry import TaskSpec, registry
from taskito.result import JobResult
from taskito.serialization import _dumps, dump_call, dumps, unique_key_for
from taskito.states import JobStatus
from taskito.task import Task

EMPTY_ARGS = "[]"
EMPTY_KWARGS = "{}"
_NEVER = (JobStatus.DEAD, JobStatus.CANCELLED, JobStatus.FAILED)
#: attempts at a unique insert whose key holder finishes between the insert and the look-up
_HAND_OVER_TRIES = 20


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

    def default_plan(self, task_name: str, spec: TaskSpec | None,
                     dialect: Dialect | None = None) -> Plan:
        """plan() for a call without options: the resolved defaults are cached per task (and
        dropped when the TASKITO setting changes); only the timestamps are new. (`dialect`:
        this queue's, when the caller has it at hand.)"""
        key = (task_name, taskito_settings.generation)
        cached = self._plans.get(key)
        if cached is None:
            cached = self.plan(task_name, spec)
            self._plans = {k: v for k, v in self._plans.items() if k[1] == key[1]}
            self._plans[key] = cached
        at = (dialect or self.dialect).dt(timezone.now())
        return Plan(cached.task_name, cached.queue, cached.priority, cached.max_retries,
                    cached.timeout_ms, cached.soft_timeout_ms, at, at, None, cached.result_ttl,
                    None, [])

    def row(self, plan: Plan, job_id: uuid.UUID, args: str, kwargs: str,
            unique_key: str | None = None, dialect: Dialect | None = None) -> tuple[Any, ...]:
        """One job's values in INSERT_COLUMNS order (`dialect`: this queue's, looked up once
        by a caller that builds many rows)."""
        return (
            (dialect or self.dialect).uid(job_id), plan.queue, plan.task_name, args, kwargs, 0,
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
        hooks = middleware.chain(spec)
        if hooks:
            options, unique_key = middleware.on_enqueue(hooks, task_name, args, kwargs,
                                                        options, unique_key)
        dialect = self.dialect  # once: the property reads the settings
        fast = not options and (spec is None or spec.expires is None)
        plan = self.default_plan(task_name, spec, dialect) if fast else self.plan(
            task_name, spec, **options)
        if args or kwargs:
            args_json, kwargs_json = dump_call(task_name, args, kwargs)
        else:
            args_json, kwargs_json = EMPTY_ARGS, EMPTY_KWARGS
        if spec is not None and spec.unique and unique_key is None:
            unique_key = unique_key_for(task_name, args, kwargs)
        _check_key(unique_key)
        if unique_key is None and not plan.dependencies:
            job_id = new_id()
            dialect.insert_jobs([self.row(plan, job_id, args_json, kwargs_json, dialect=dialect)])
            enqueued = signals.job_enqueued
            if enqueued.receivers and enqueued.has_listeners(self.__class__):
                self._after_enqueue(plan, [job_id])
            return self._enqueued([job_id])[0] if self.test_mode_state else self.handle(job_id)
        # Write first, then read: on SQLite a deferred transaction that reads first cannot wait
        # for the write lock. A bad dependency raises here and rolls the insert back.
        with transaction.atomic(using=self.using):
            job_id, created = self.write_job(plan, args_json, kwargs_json, unique_key)
            if not created:
                return self.handle(job_id, created=False)
            self._check_dependencies(plan.dependencies)
            self._insert_dependencies(job_id, plan.dependencies)
            self._after_enqueue(plan, [job_id])
        return self._enqueued([job_id])[0]

    def write_job(self, plan: Plan, args_json: str, kwargs_json: str,
                  unique_key: str | None) -> tuple[uuid.UUID, bool]:
        """Insert one job: (its id, True); or, when an active job holds `unique_key`, that
        job's (id, False)."""
        if unique_key is None:
            job_id = new_id()
            self.dialect.insert_jobs([self.row(plan, job_id, args_json, kwargs_json)])
            return job_id, True
        return self._insert_unique(plan, args_json, kwargs_json, unique_key)

    def _insert_unique(self, plan: Plan, args_json: str, kwargs_json: str,
                       key: str) -> tuple[uuid.UUID, bool]:
        """Insert (id, True), or find the active job that holds `key` (its id, False).

        ON CONFLICT DO NOTHING never raises, so a caller's own transaction stays usable on
        PostgreSQL; if the holder finishes between our insert and our look-up, try again."""
        for _ in range(_HAND_OVER_TRIES):
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
        insert). Unique keys (`unique=True` or `unique_key=`) hold within the batch and
        against active jobs: a call whose key is taken gets the holder's handle."""
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
        batch = _Batch(self, task_name, spec, options)
        for args, kwargs in zip(args_seq, kwargs_seq, strict=True):
            batch.add(args, kwargs)
        with transaction.atomic(using=self.using):  # write first (see enqueue)
            ids = batch.write()
            for plan, new in batch.created_by_plan():
                self._check_dependencies(plan.dependencies)
                for job_id in new if plan.dependencies else ():
                    self._insert_dependencies(job_id, plan.dependencies)
                self._after_enqueue(plan, new)
        created = batch.created
        if self.test_mode_state and created:
            self._enqueued([i for i in dict.fromkeys(ids) if i in created])
        handles: list[JobResult] = []
        seen: set[uuid.UUID] = set()
        for job_id in ids:  # a folded duplicate, or a key held by an active job: not created
            handles.append(self.handle(job_id, created=job_id in created and job_id not in seen))
            seen.add(job_id)
        return handles

    def _enqueued(self, ids: list[uuid.UUID]) -> list[JobResult]:
        """Handles of new jobs; under `test_mode()` each runs here first."""
        state = self.test_mode_state
        if state is None:
            return [self.handle(job_id) for job_id in ids]
        return state.run(ids)

    def _after_enqueue(self, plan: Plan, ids: list[uuid.UUID]) -> None:
        """Wake workers and send `job_enqueued` once the enclosing transaction commits."""
        if not signals.job_enqueued.has_listeners(self.__class__):
            return

        def send() -> None:
            for job_id in ids:
                signals.send_guarded(signals.job_enqueued, sender=self.__class__,
                                     job_id=job_id, task_name=plan.task_name, queue=plan.queue)

        transaction.on_commit(send, using=self.using)


def _check_key(key: Any) -> None:
    if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
        raise ValueError(f"unique_key must be a non-empty string of at most 255 characters, "
                         f"not {key!r:.80}")


class _Batch:
    """The rows of one enqueue_many call, grouped by plan (one unless middleware changed a
    row's options), with unique keys folded within the batch."""

    def __init__(self, queue: EnqueueMixin, task_name: str, spec: TaskSpec | None,
                 options: dict[str, Any]) -> None:
        self.queue = queue
        self.task_name = task_name
        self.spec = spec
        self.hooks = middleware.chain(spec)
        self.plans: dict[str, Plan] = {}
        self.options = options = dict(options)
        #: without middleware every row shares one plan and one explicit key
        self.key: str | None = options.pop("unique_key", None)
        self.plan: Plan | None = None if self.hooks else queue.plan(task_name, spec, **options)
        self.rows: list[tuple[Plan, uuid.UUID, str, str, str | None]] = []
        #: job id per call, in call order (a folded duplicate repeats its first call's id)
        self.ids: list[uuid.UUID] = []
        self.created: set[uuid.UUID] = set()
        self._by_key: dict[str, uuid.UUID] = {}

    def _plan(self, options: dict[str, Any]) -> Plan:
        marker = repr(sorted(options.items(), key=lambda item: item[0]))
        plan = self.plans.get(marker)
        if plan is None:
            plan = self.plans[marker] = self.queue.plan(self.task_name, self.spec, **options)
        return plan

    def add(self, args: Any, kwargs: Any) -> None:
        plan, key = self.plan, self.key
        if plan is None:  # middleware may change each row's options
            options, key = middleware.on_enqueue(self.hooks, self.task_name, args, kwargs,
                                                 self.options, key)
            plan = self._plan(options)
        try:
            args_json = _dumps(list(args)) if args else EMPTY_ARGS
            kwargs_json = _dumps(kwargs) if kwargs else EMPTY_KWARGS
            if not isinstance(kwargs or {}, Mapping):
                raise TypeError("kwargs must be a mapping")
        except (TypeError, ValueError):
            args_json, kwargs_json = dump_call(self.task_name, args, kwargs)
        if key is None and self.spec is not None and self.spec.unique:
            key = unique_key_for(self.task_name, args, kwargs)
        _check_key(key)
        if key is not None and key in self._by_key:
            self.ids.append(self._by_key[key])
            return
        job_id = new_id()
        if key is not None:
            self._by_key[key] = job_id
        self.ids.append(job_id)
        self.rows.append((plan, job_id, args_json, kwargs_json, key))

    def write(self) -> list[uuid.UUID]:
        """Insert every row: the plain ones in one statement, the unique ones one statement
        per batch, then one look-up of the holders of the keys that were taken. Returns the
        job id of each call."""
        q = self.queue
        d = q.dialect  # once: the property reads the settings
        plain = [q.row(p, i, a, k, dialect=d) for p, i, a, k, key in self.rows if key is None]
        if plain:
            d.insert_jobs(plain)
            self.created.update(i for _, i, _, _, key in self.rows if key is None)
        pending = [r for r in self.rows if r[4] is not None]
        held: dict[uuid.UUID, uuid.UUID] = {}
        for _ in range(_HAND_OVER_TRIES):
            if not pending:
                break
            written = d.insert_unique_jobs([q.row(p, i, a, k, key, dialect=d)
                                            for p, i, a, k, key in pending])
            self.created.update(written)
            taken = [r for r in pending if r[1] not in written]
            holders = d.active_unique_many([str(r[4]) for r in taken]) if taken else {}
            for r in taken:
                if r[4] in holders:
                    held[r[1]] = holders[str(r[4])]
            # a holder that finished between the insert and the look-up: insert again
            pending = [r for r in taken if r[4] not in holders]
        if pending:
            raise RuntimeError(f"could not enqueue unique_key {pending[0][4]!r}: it keeps "
                               "changing hands")
        return [held.get(i, i) for i in self.ids]

    def created_by_plan(self) -> list[tuple[Plan, list[uuid.UUID]]]:
        groups: dict[int, tuple[Plan, list[uuid.UUID]]] = {}
        for plan, job_id, *_ in self.rows:
            if job_id in self.created:
                groups.setdefault(id(plan), (plan, []))[1].append(job_id)
        return list(groups.values())


class _Picker:
    """Per-call value, else the task's default, else None."""

    def __init__(self, spec: TaskSpec | None) -> None:
        self.spec = spec

    def __call__(self, value: Any, name: str) -> Any:
        if value is not None or self.spec is None:
            return value
        return getattr(self.spec, name)
