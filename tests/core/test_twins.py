"""Every async twin of Queue answers and acts like its sync method.

The operations come from `taskito.queue.ASYNC_TWINS`, the list the twins are declared beside:
a public operation added to a Queue mixin fails `test_every_public_operation_has_a_twin` until
it gets a twin (or a reason here not to), and each twin in the list must have a case below."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from taskito import WorkflowResult, chain
from taskito.engine import Engine
from taskito.enqueueing import EnqueueMixin
from taskito.inspection import InspectionMixin
from taskito.operations import OperationsMixin
from taskito.queue import ASYNC_TWINS, Queue
from taskito.result import JobResult
from taskito.workflow_queue import WorkflowMixin
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

#: public methods of the mixins that are not operations for users, so have no twin
NO_TWIN = {
    "counts": "the raw {(queue, status): n} under stats(), which has the twin",
    "fetch_job_row": "a row for JobResult.refresh(), which the twins' handles use",
    "purge_jobs": "the batched delete under purge_completed() and the housekeeper",
    "plan": "validation step of enqueue()",
    "default_plan": "cached plan of enqueue() without options",
    "row": "one INSERT's values of enqueue()",
    "write_job": "the insert under enqueue(), retry_dead() and replay()",
    "copy_job": "the option-keeping copy under retry_dead(), replay() and a resumed workflow",
    "resume_step": "the workflow hook of retry_dead() and replay()",
    "step_cancelled": "the workflow hook of cancel_job()",
    "fetch_workflow": "the rows under get_workflow()'s WorkflowResult",
    "workflow_state": "the status code WorkflowResult.result() polls",
    "workflow_progress": "the event of the workflow progress stream",
}



def mixin_operations() -> set[str]:
    names = set()
    for mixin in (InspectionMixin, OperationsMixin, EnqueueMixin, WorkflowMixin):
        names |= {n for n, v in vars(mixin).items() if not n.startswith("_") and callable(v)}
    return names


def test_every_public_operation_has_a_twin():
    assert mixin_operations() - set(NO_TWIN) == set(ASYNC_TWINS)


@pytest.mark.parametrize("name", ASYNC_TWINS)
def test_twin_wraps_its_sync_method(name):
    twin = getattr(Queue, f"a{name}")
    assert inspect.iscoroutinefunction(twin)
    assert twin.__name__ == f"a{name}"
    assert twin.__wrapped__ is getattr(Queue, name)
    assert inspect.signature(twin) == inspect.signature(getattr(Queue, name))


def test_every_twin_has_a_case():
    assert set(CASES) == set(ASYNC_TWINS)


# -- one case per operation ----------------------------------------------------------------

@dataclass
class World:
    queue: Queue
    engine: Engine
    run_all: Callable[[], Any]

    def completed(self) -> JobResult:
        job = tasks.reports.delay(2)  # leaves logs and a metric
        self.run_all()
        return job

    def dead(self) -> JobResult:
        job = tasks.fatal.delay()
        self.run_all()
        return job

    def dead_id(self) -> Any:
        self.dead()
        return self.queue.dead_letters(limit=1)[0]["id"]

    def running(self) -> JobResult:
        job = tasks.noop.apply_async(queue="running-here")
        (claimed,) = self.engine.claim(worker_id="twin-test", limit=1, queues=["running-here"])
        assert claimed.id == job.id
        return job

    def chain(self) -> JobResult:
        first = tasks.noop.delay()
        return tasks.noop.apply_async(depends_on=[first.id])


def as_dict(value: Any) -> Any:
    """JobResult and WorkflowResult handles compare by what they show."""
    if isinstance(value, JobResult | WorkflowResult):
        return value.to_dict()
    if isinstance(value, list):
        return [as_dict(v) for v in value]
    return value


@dataclass
class Case:
    """`subject(world)` -> the call's (args, kwargs). A read-only case calls both methods on
    one subject and compares the answers; an acting case makes a subject for each call and
    compares `shape(world, answer)` (what the call answered and did, without new ids)."""
    subject: Callable[[World], tuple[tuple[Any, ...], dict[str, Any]]]
    shape: Callable[[World, Any], Any] | None = None


def job_id_of(make: Callable[[World], JobResult]) -> Callable[[World], Any]:
    return lambda w: ((make(w).id,), {})


def new_job(w: World, value: Any) -> Any:
    job = w.queue.get_job(value.id if isinstance(value, JobResult) else value)
    return (job.status, job.to_dict()["task_name"])


CASES: dict[str, Case] = {
    "stats": Case(lambda w: (w.completed(), ((), {}))[1]),
    "stats_by_queue": Case(lambda w: (w.dead(), ((), {}))[1]),
    "get_job": Case(job_id_of(World.completed)),
    "job_progress": Case(lambda w: (([w.completed().id],), {"partial": True})),
    "list_jobs": Case(lambda w: (w.completed(), w.dead(), ((), {"status": "dead"}))[2]),
    "job_errors": Case(job_id_of(World.dead)),
    "task_logs": Case(job_id_of(World.completed)),
    "metrics": Case(lambda w: (w.completed(), ((), {"task_name": tasks.reports.name}))[1]),
    "dead_letters": Case(lambda w: (w.dead(), ((), {"limit": 5}))[1]),
    "job_dependencies": Case(job_id_of(World.chain)),
    "job_dependents": Case(lambda w: ((w.chain().dependencies[0],), {})),
    "oldest_pending": Case(lambda w: (tasks.noop.delay(), ((), {"now": None}))[1]),
    "throughput": Case(lambda w: (w.completed(), ((), {"minutes": 3}))[1]),
    "job_dag": Case(job_id_of(World.chain)),
    "enqueue": Case(lambda w: ((tasks.add.name,), {"args": (1, 2), "queue": "twins"}),
                    shape=new_job),
    "enqueue_many": Case(lambda w: ((tasks.add.name, [(1, 2), (3, 4)]), {}),
                         shape=lambda w, jobs: [new_job(w, j) for j in jobs]),
    "cancel_job": Case(lambda w: ((tasks.noop.delay().id,), {}),
                       shape=lambda w, ok: (ok, w.queue.stats()["cancelled"] > 0)),
    "requeue_job": Case(job_id_of(World.dead),
                        shape=lambda w, ok: (ok, w.queue.stats()["pending"],
                                             w.queue.dead_letters())),
    "revoke_task": Case(lambda w: (tasks.noop.delay(), tasks.noop.delay(),
                                   ((tasks.noop.name,), {}))[2],
                        shape=lambda w, n: (n, w.queue.stats()["cancelled"])),
    "workers": Case(lambda w: (w.engine.heartbeat(
        worker_id="twin-test", hostname="h", pid=1, queues="*", concurrency=2,
        started_at=timezone.now()), w.running(), ((), {}))[2]),
    "overview": Case(lambda w: (w.completed(), w.dead(), w.engine.heartbeat(
        worker_id="twin-test", hostname="h", pid=1, queues="*", concurrency=2,
        started_at=timezone.now()), w.running(),
        ((), {"minutes": 5, "now": timezone.now()}))[4]),
    "circuit_breakers": Case(lambda w: ((), {})),  # tasks.guarded has one
    "cancel_running_job": Case(job_id_of(World.running), shape=lambda w, ok: ok),
    "retry_dead": Case(lambda w: ((w.dead_id(),), {}), shape=new_job),
    "delete_dead": Case(lambda w: ((w.dead_id(),), {}),
                        shape=lambda w, ok: (ok, w.queue.dead_letters())),
    "replay": Case(job_id_of(World.completed), shape=new_job),
    "purge_completed": Case(lambda w: (w.completed(), ((), {"older_than": 0}))[1],
                            shape=lambda w, n: (n, w.queue.stats()["completed"])),
    "purge_dead": Case(lambda w: (w.dead(), ((), {"older_than": 0}))[1],
                       shape=lambda w, n: (n, w.queue.dead_letters())),
    "pause": Case(lambda w: (("twins",), {}),
                  shape=lambda w, none: (none, w.queue.paused_queues())),
    "resume": Case(lambda w: (w.queue.pause("twins"), (("twins",), {}))[1],
                   shape=lambda w, none: (none, w.queue.paused_queues())),
    "paused_queues": Case(lambda w: (w.queue.pause("twins"), ((), {}))[1]),
    "apply_workflow": Case(lambda w: ((chain(tasks.add.s(1, 2), tasks.mul.s(2)),), {}),
                           shape=lambda w, wf: (wf.status, [j.status for j in wf.jobs])),
    "get_workflow": Case(lambda w: ((chain(tasks.add.s(1, 2)).apply_async().id,), {})),
    "cancel_workflow": Case(lambda w: ((chain(tasks.add.s(1, 2), tasks.mul.s(2))
                                        .apply_async().id,), {}),
                            shape=lambda w, n: n),
}


@pytest.mark.parametrize("name", ASYNC_TWINS)
def test_twin_answers_like_the_sync_method(name, queue, engine, worker):
    case = CASES[name]
    world = World(queue, engine, worker.run_until_empty)
    sync, twin = getattr(queue, name), async_to_sync(getattr(queue, f"a{name}"))
    if case.shape is None:
        args, kwargs = case.subject(world)
        expected = as_dict(sync(*args, **kwargs))
        assert expected not in (None, [], {}), "the case must give the call something to find"
        assert as_dict(twin(*args, **kwargs)) == expected
        return
    args, kwargs = case.subject(world)
    from_twin = case.shape(world, twin(*args, **kwargs))
    _reset(queue)
    args, kwargs = case.subject(world)
    assert case.shape(world, sync(*args, **kwargs)) == from_twin


def _reset(queue: Queue) -> None:
    """Back to an empty queue between the twin's and the sync method's acting call."""
    queue.purge_completed(older_than=0)
    queue.purge_dead(older_than=0)
    queue.job_model.objects.using(queue.using).all().delete()
    for name in queue.paused_queues():
        queue.resume(name)
