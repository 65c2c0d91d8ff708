"""Workflow verbs on Queue: write a chain/group/chord, read it back, cancel it, resume it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from taskito import signals
from taskito.db.statements import INSERT_COLUMNS
from taskito.enqueueing import EnqueueMixin
from taskito.exceptions import TaskNotRegistered
from taskito.ids import as_uuid, new_id
from taskito.registry import registry
from taskito.serialization import dump_call
from taskito.states import JobStatus, WorkflowStatus
from taskito.workflow_result import WorkflowResult
from taskito.workflows import (
    WAITING,
    Canvas,
    Graph,
    StoredGraph,
    compile_workflow,
    end_workflow,
    graph_of,
)

_SCHEDULED = INSERT_COLUMNS.index("scheduled_at")
_EXPIRES = INSERT_COLUMNS.index("expires_at")
_STEP_FIELDS = ("id", "workflow_step", "task_name", "status", "attempts", "queue", "priority",
                "progress", "retry_count", "max_retries", "created_at", "scheduled_at",
                "started_at", "completed_at", "expires_at", "error", "timeout_ms",
                "unique_key", "metadata", "result")


class WorkflowMixin(EnqueueMixin):
    """chain / group / chord as rows, advanced by the worker (see `engine.workflows`)."""

    if TYPE_CHECKING:  # OperationsMixin's, beside this one in Queue
        def copy_job(self, job_id: uuid.UUID, *, scheduled_at: datetime | None = None
                     ) -> uuid.UUID | None: ...

    def apply_workflow(self, canvas: Canvas) -> WorkflowResult:
        """Write a workflow and all its steps in one transaction (the caller's, inside
        `transaction.atomic()`). Unknown tasks, arguments that are not JSON and groups over
        MAX_GROUP members are refused before anything is written."""
        graph = compile_workflow(canvas)
        now = timezone.now()
        workflow_id = new_id()
        rows, names = self._step_rows(graph, workflow_id, now)
        d = self.dialect
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            d.insert_workflow(cursor, workflow_id, graph.to_json(), len(graph.exits), now, rows)
            if signals.job_enqueued.has_listeners(self.__class__):
                transaction.on_commit(lambda: self._announce(names), using=self.using)
        if self.test_mode_state is not None:
            self._run_here(self.test_mode_state, workflow_id)
        return WorkflowResult(self, workflow_id)

    def _run_here(self, state: Any, workflow_id: uuid.UUID) -> None:
        """Under `queue.test_mode()`: run the workflow's steps in this thread as they become
        ready (each finish releases the next, as in a worker), until none is left."""
        ready = (self.job_model.objects.using(self.using)
                 .filter(workflow_id=workflow_id, status=JobStatus.PENDING,
                         scheduled_at__lt=WAITING)
                 .order_by("workflow_step", "id").values_list("id", flat=True))
        ran: set[uuid.UUID] = set()
        while True:
            ids = [job_id for job_id in ready.all() if job_id not in ran]  # a fresh read
            if not ids:
                return
            ran.update(ids)
            state.run(ids)

    def _step_rows(self, graph: Graph, workflow_id: uuid.UUID, now: datetime
                   ) -> tuple[list[tuple[Any, ...]], list[tuple[uuid.UUID, str, str]]]:
        d = self.dialect
        rows: list[tuple[Any, ...]] = []
        names: list[tuple[uuid.UUID, str, str]] = []
        for index, step in enumerate(graph.steps):
            sig = step.sig
            spec = registry.find(sig.task_name)
            if spec is None:
                raise TaskNotRegistered(f"workflow step {index}: no task named "
                                        f"{sig.task_name!r} is registered")
            options = dict(sig.options)
            if step.parents:  # a waiting step's delay counts from its release
                options.pop("delay", None)
            plan = self.plan(sig.task_name, spec, now=now, **options)
            args_json, kwargs_json = dump_call(sig.task_name, sig.args, sig.kwargs)
            job_id = new_id()
            values = list(self.row(plan, job_id, args_json, kwargs_json))
            values[_EXPIRES] = None  # an expired step would stall its workflow
            if step.parents:
                values[_SCHEDULED] = d.dt(WAITING)
            rows.append((*values, d.uid(workflow_id), index,
                         len(step.parents) if step.parents else None))
            names.append((job_id, plan.task_name, plan.queue))
        return rows, names

    def _announce(self, names: list[tuple[uuid.UUID, str, str]]) -> None:
        for job_id, task_name, queue in names:
            signals.send_guarded(signals.job_enqueued, sender=self.__class__, job_id=job_id,
                                 task_name=task_name, queue=queue)

    def fetch_workflow(self, workflow_id: Any) -> dict[str, Any] | None:
        """The workflow row and its steps (the newest job of each step, in step order)."""
        wid = as_uuid(workflow_id)
        if wid is None:
            return None
        from taskito.models import Workflow

        row = (Workflow.objects.using(self.using).filter(id=wid)
               .values("id", "status", "graph", "created_at", "finished_at").first())
        if row is None:
            return None
        steps: dict[int, dict[str, Any]] = {}
        for step in (self.job_model.objects.using(self.using).filter(workflow_id=wid)
                     .order_by("workflow_step", "created_at", "id").values(*_STEP_FIELDS)):
            steps[step["workflow_step"]] = step  # a later copy (resumed step) wins
        graph = StoredGraph.parse(row["graph"])
        return {"status": row["status"], "created_at": row["created_at"],
                "finished_at": row["finished_at"], "steps": [steps[i] for i in sorted(steps)],
                "exits": graph.exits, "as_list": graph.as_list}

    def workflow_state(self, workflow_id: Any) -> int | None:
        """The stored WorkflowStatus code (one small query), None for an unknown workflow."""
        wid = as_uuid(workflow_id)
        if wid is None:
            return None
        from taskito.models import Workflow

        code: int | None = (Workflow.objects.using(self.using).filter(id=wid)
                            .values_list("status", flat=True).first())
        return code

    def workflow_progress(self, workflow_id: Any) -> dict[str, Any] | None:
        """{status, finished, steps}: the workflow's status and how many of its steps have
        finished (a step with a pending or running job is not), from two queries; None for
        an unknown workflow. What progress streams poll."""
        wid = as_uuid(workflow_id)
        stored = None if wid is None else self.workflow_state(wid)
        if stored is None:
            return None
        active = Q(status__in=[JobStatus.PENDING, JobStatus.RUNNING])
        counts = self.job_model.objects.using(self.using).filter(workflow_id=wid).aggregate(
            steps=Count("workflow_step", distinct=True),
            active=Count("workflow_step", distinct=True, filter=active),
            started=Count("id", filter=~Q(status=JobStatus.PENDING) | Q(attempts__gt=0)))
        status = WorkflowStatus(stored).label
        if stored == WorkflowStatus.ACTIVE:
            status = "running" if counts["started"] else "pending"
        return {"status": status, "finished": counts["steps"] - counts["active"],
                "steps": counts["steps"]}

    def get_workflow(self, workflow_id: Any) -> WorkflowResult | None:
        """The workflow with this id, or None."""
        wid = as_uuid(workflow_id)
        data = None if wid is None else self.fetch_workflow(wid)
        return None if wid is None or data is None else WorkflowResult(self, wid, data)

    def cancel_workflow(self, workflow_id: Any) -> int:
        """Cancel an active workflow: its pending steps are cancelled, its running ones get
        a cancel request; returns how many steps that touched (0 if it was not active)."""
        wid = as_uuid(workflow_id)
        if wid is None:
            return 0
        d = self.dialect
        now = timezone.now()
        jobs = self.job_model.objects.using(self.using)
        with transaction.atomic(using=self.using), d.cursor() as cursor:
            if not d.end_workflow(cursor, wid, int(WorkflowStatus.CANCELLED), now):
                return 0
            pending = list(jobs.filter(workflow_id=wid, status=JobStatus.PENDING)
                           .values_list("id", flat=True))
            d.cancel_steps(cursor, pending, now, "workflow cancelled")
            running = jobs.filter(workflow_id=wid, status=JobStatus.RUNNING).update(
                cancel_requested=True)
        return len(pending) + int(running)

    def step_cancelled(self, cursor: Any, job_id: uuid.UUID) -> None:
        """A pending step was cancelled on its own: the workflow is cancelled and the steps
        that wait on it with it."""
        src = (self.job_model.objects.using(self.using).filter(id=job_id)
               .values("workflow_id", "workflow_step").first())
        if src is None or src["workflow_id"] is None:
            return
        graph = graph_of(self.dialect, cursor, src["workflow_id"])
        if graph is not None:
            end_workflow(self.dialect, cursor, src["workflow_id"], graph, src["workflow_step"],
                         job_id, "cancelled", timezone.now())

    def resume_step(self, cursor: Any, new: uuid.UUID, source_job: uuid.UUID) -> None:
        """A dead step of a failed workflow was copied as `new` (retry_dead, replay): make
        it that step again, reopen the workflow and put back, waiting, the later steps that
        its failure cancelled. A no-op for a job of no (or a purged) workflow."""
        src = (self.job_model.objects.using(self.using).filter(id=source_job)
               .values("workflow_id", "workflow_step", "status").first())
        if src is None or src["workflow_id"] is None or src["status"] != JobStatus.DEAD:
            return
        from taskito.models import Workflow

        wid, step = src["workflow_id"], src["workflow_step"]
        if not Workflow.objects.using(self.using).filter(
                id=wid, status=WorkflowStatus.FAILED).exists():
            return
        d = self.dialect
        graph = graph_of(d, cursor, wid)
        if graph is None:
            return
        d.set_step(cursor, new, wid, step, 0)
        d.reopen_workflow(cursor, wid)
        latest: dict[int, tuple[uuid.UUID, int]] = {}
        for job_id, index, status in (self.job_model.objects.using(self.using)
                                      .filter(workflow_id=wid)
                                      .order_by("workflow_step", "created_at", "id")
                                      .values_list("id", "workflow_step", "status")):
            latest[index] = (job_id, status)
        latest[step] = (new, JobStatus.PENDING)
        for later in graph.descendants(step):
            job_id, status = latest[later]
            if status != JobStatus.CANCELLED:
                continue
            copy = self.copy_job(job_id, scheduled_at=WAITING)
            if copy is None:  # purged meanwhile: nothing to put back
                continue
            waiting = sum(1 for p in graph.parents[later]
                          if latest[p][1] != JobStatus.COMPLETE)
            d.set_step(cursor, copy, wid, later, waiting)
            latest[later] = (copy, JobStatus.PENDING)
