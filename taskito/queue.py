"""`Queue`: the user's verbs (define tasks, enqueue, inspect, operate), as sibling mixins over
one QueueBase. What workers do to rows lives in `taskito.engine`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from taskito.cron import validate_cron
from taskito.enqueueing import EnqueueMixin
from taskito.inspection import InspectionMixin
from taskito.operations import OperationsMixin
from taskito.registry import PeriodicSpec, build_spec, registry
from taskito.serialization import dumps
from taskito.task import Task
from taskito.twins import async_twin
from taskito.workflow_queue import WorkflowMixin

if TYPE_CHECKING:
    from taskito.testing import TestMode

P = ParamSpec("P")
R = TypeVar("R")


class Queue(WorkflowMixin, EnqueueMixin, InspectionMixin, OperationsMixin):
    """A queue over one database alias. Defaults come from keyword arguments, else from the
    TASKITO setting (read when first needed, never at import time)."""

    # -- defining tasks --------------------------------------------------------------------
    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, func: None = None, /, **options: Any
             ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, func: Callable[P, R] | None = None, /, **options: Any
             ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: `@queue.task()` or `@queue.task(max_retries=5)`."""

        def decorate(fn: Callable[P, R]) -> Task[P, R]:
            spec = build_spec(fn, **options)
            registry.register(spec)
            return Task(self, spec)

        return decorate(func) if func is not None else decorate

    def periodic(self, *, cron: str, name: str | None = None, args: Iterable[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str | None = None,
                 timezone: str = "UTC", **task_options: Any
                 ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task and a cron schedule for it: `@queue.periodic(cron="*/5 * * * *")`.
        5 fields, or 6 with seconds first; `timezone` is the zone the cron is read in.
        Workers store the schedule as a PeriodicTask row (it survives restarts and can be
        disabled in the admin); the lifeline leader enqueues it once per due time."""
        validate_cron(cron, timezone)
        args_tuple = tuple(args)
        kwargs_items = tuple(sorted((kwargs or {}).items()))
        dumps(list(args_tuple), "periodic args")
        dumps(dict(kwargs_items), "periodic kwargs")

        def decorate(fn: Callable[P, R]) -> Task[P, R]:
            task = self.task(**task_options)(fn)
            registry.add_periodic(PeriodicSpec(
                name=name or task.name, task_name=task.name, cron=cron, args=args_tuple,
                kwargs=kwargs_items, queue=queue, timezone=timezone))
            return task

        return decorate

    # -- tests ------------------------------------------------------------------------------
    def test_mode(self, propagate_errors: bool = False) -> TestMode:
        """`with queue.test_mode() as ran:` every job enqueued through this queue (delay,
        apply_async, map, enqueue, enqueue_many; from any thread) runs at once in the
        enqueueing thread, retries included, and `ran` collects their JobResults. The jobs
        are real rows. With `propagate_errors`, a job that ends dead raises its exception
        from the enqueue call."""
        from taskito.testing import TestMode

        return TestMode(self, propagate_errors=propagate_errors)

    # -- async twins, generated in one place -------------------------------------------------
    # ASYNC_TWINS below lists them; tests/core/test_twins.py runs each against its sync method
    # and fails when a public operation of the mixins has no twin and no reason in its list.
    astats = async_twin(InspectionMixin.stats)
    astats_by_queue = async_twin(InspectionMixin.stats_by_queue)
    aget_job = async_twin(InspectionMixin.get_job)
    ajob_progress = async_twin(InspectionMixin.job_progress)
    alist_jobs = async_twin(InspectionMixin.list_jobs)
    ajob_errors = async_twin(InspectionMixin.job_errors)
    atask_logs = async_twin(InspectionMixin.task_logs)
    ametrics = async_twin(InspectionMixin.metrics)
    adead_letters = async_twin(InspectionMixin.dead_letters)
    ajob_dependencies = async_twin(InspectionMixin.job_dependencies)
    ajob_dependents = async_twin(InspectionMixin.job_dependents)
    aoldest_pending = async_twin(InspectionMixin.oldest_pending)
    athroughput = async_twin(InspectionMixin.throughput)
    ajob_dag = async_twin(InspectionMixin.job_dag)
    aenqueue = async_twin(EnqueueMixin.enqueue)
    aenqueue_many = async_twin(EnqueueMixin.enqueue_many)
    acancel_job = async_twin(OperationsMixin.cancel_job)
    arevoke_task = async_twin(OperationsMixin.revoke_task)
    arequeue_job = async_twin(OperationsMixin.requeue_job)
    aworkers = async_twin(InspectionMixin.workers)
    aoverview = async_twin(InspectionMixin.overview)
    acircuit_breakers = async_twin(InspectionMixin.circuit_breakers)
    acancel_running_job = async_twin(OperationsMixin.cancel_running_job)
    aretry_dead = async_twin(OperationsMixin.retry_dead)
    adelete_dead = async_twin(OperationsMixin.delete_dead)
    areplay = async_twin(OperationsMixin.replay)
    apurge_completed = async_twin(OperationsMixin.purge_completed)
    apurge_dead = async_twin(OperationsMixin.purge_dead)
    apause = async_twin(OperationsMixin.pause)
    aresume = async_twin(OperationsMixin.resume)
    apaused_queues = async_twin(OperationsMixin.paused_queues)
    aapply_workflow = async_twin(WorkflowMixin.apply_workflow)
    aget_workflow = async_twin(WorkflowMixin.get_workflow)
    acancel_workflow = async_twin(WorkflowMixin.cancel_workflow)


#: Every Queue operation with an `a`-prefixed async twin (the attributes above).
ASYNC_TWINS = (
    "stats", "stats_by_queue", "get_job", "job_progress", "list_jobs", "job_errors",
    "task_logs", "metrics", "dead_letters", "job_dependencies", "job_dependents",
    "oldest_pending", "throughput", "job_dag", "enqueue", "enqueue_many", "cancel_job",
    "cancel_running_job", "retry_dead", "delete_dead", "replay", "purge_completed",
    "purge_dead", "pause", "resume", "paused_queues", "apply_workflow", "get_workflow",
    "cancel_workflow", "workers", "requeue_job", "revoke_task", "overview", "circuit_breakers",
)

#: The default queue, configured by the TASKITO setting.
queue = Queue()
