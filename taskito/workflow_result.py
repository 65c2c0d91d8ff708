"""`WorkflowResult`: a handle on one workflow, refreshed from the database on demand."""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db import connections

from taskito.exceptions import JobNotFound, TaskCancelledError
from taskito.result import JobResult
from taskito.serialization import loads
from taskito.states import JobStatus, WorkflowStatus
from taskito.twins import async_twin


class WorkflowSource(Protocol):
    """What a WorkflowResult asks of its queue."""

    @property
    def poll_interval(self) -> float: ...
    @property
    def dialect(self) -> Any: ...
    def fetch_workflow(self, workflow_id: Any) -> dict[str, Any] | None: ...
    def workflow_state(self, workflow_id: Any) -> int | None: ...
    def cancel_workflow(self, workflow_id: Any) -> int: ...
    def handle(self, job_id: uuid.UUID, row: dict[str, Any] | None = None,
               created: bool = True) -> JobResult: ...


def workflow_status(stored: int, steps: list[dict[str, Any]]) -> str:
    """`pending` until a step has started, then `running`, until the stored status ends."""
    if stored != WorkflowStatus.ACTIVE:
        return WorkflowStatus(stored).label
    started = any(s["status"] != JobStatus.PENDING or s["attempts"] for s in steps)
    return "running" if started else "pending"


class WorkflowResult:
    """What a workflow's `apply_async()` returns: its id plus its row and steps as of the
    last `refresh()`."""

    def __init__(self, queue: WorkflowSource, workflow_id: uuid.UUID,
                 data: dict[str, Any] | None = None) -> None:
        self.queue = queue
        self.id = workflow_id
        self._data: dict[str, Any] | None = data

    def __repr__(self) -> str:
        return f"<WorkflowResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _loaded(self) -> dict[str, Any]:
        return self._data if self._data is not None else self.refresh()._data or {}

    def refresh(self) -> WorkflowResult:
        """Re-read the workflow and its steps; raises JobNotFound if it does not exist."""
        data = self.queue.fetch_workflow(self.id)
        if data is None:
            raise JobNotFound(f"workflow {self.id} does not exist")
        self._data = data
        return self

    @property
    def status(self) -> str:
        """pending, running, complete, failed or cancelled."""
        data = self._loaded()
        return workflow_status(data["status"], data["steps"])

    @property
    def jobs(self) -> list[JobResult]:
        """The steps' JobResults in step order (a resumed step: its newest job)."""
        return [self.queue.handle(s["id"], dict(s)) for s in self._loaded()["steps"]]

    # -- waiting for the outcome -----------------------------------------------------------
    def result(self, timeout: float = 30, poll_interval: float | None = None) -> Any:
        """Block until the workflow ends; the last step's result (a list, in order, when the
        workflow ends with a group). A failed or cancelled workflow raises what its first
        failed (or cancelled) step's `JobResult.result` raises."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        deadline = time.monotonic() + timeout
        watcher = self.queue.dialect.watcher(poll_interval or self.queue.poll_interval)
        watcher.reset()
        try:
            while True:
                # one small read per look; the steps are read once the workflow has ended
                code = self.queue.workflow_state(self.id)
                if code is None:
                    raise JobNotFound(f"workflow {self.id} does not exist")
                if code != WorkflowStatus.ACTIVE:
                    status = self.refresh().status
                    return self._outcome(status)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"workflow {self.id} is still "
                                       f"{self.refresh().status} after {timeout} s")
                watcher.wait(remaining)
        finally:
            watcher.close()

    async def aresult(self, timeout: float = 30, poll_interval: float | None = None) -> Any:
        """`result()` for async code; waits in a worker thread, not on the event loop."""
        return await sync_to_async(self._result_then_close, thread_sensitive=False)(
            timeout, poll_interval)

    def _result_then_close(self, timeout: float, poll_interval: float | None) -> Any:
        # A pool thread outside any request: close what it opened (these are its own).
        try:
            return self.result(timeout, poll_interval)
        finally:
            connections.close_all()

    def _outcome(self, status: str) -> Any:
        data = self._loaded()
        steps = data["steps"]
        if status == "complete":
            return self.value()
        for wanted in (JobStatus.DEAD, JobStatus.FAILED, JobStatus.CANCELLED):
            for step in steps:
                if step["status"] == wanted:
                    return self.queue.handle(step["id"], dict(step)).refresh().result(1)
        raise TaskCancelledError(f"workflow {self.id} was {status}")

    def value(self) -> Any:
        """The workflow's result as of the last refresh (None until it is complete)."""
        data = self._loaded()
        if data["status"] != WorkflowStatus.COMPLETE:
            return None
        by_step = {s["workflow_step"]: s for s in data["steps"]}
        results = [loads(by_step[e]["result"]) for e in data["exits"]]
        return results if data["as_list"] else results[0]

    def cancel(self) -> int:
        """Cancel every unfinished step (running ones get a cancel request); how many."""
        return self.queue.cancel_workflow(self.id)

    def to_dict(self) -> dict[str, Any]:
        """`{id, status, steps: [{job_id, task_name, status}], result}` as HTTP shows it."""
        data = self._loaded()
        return {
            "id": str(self.id),
            "status": self.status,
            "steps": [{"job_id": str(s["id"]), "task_name": s["task_name"],
                       "status": JobStatus(s["status"]).label} for s in data["steps"]],
            "result": self.value(),
        }

    arefresh = async_twin(refresh)
    acancel = async_twin(cancel)
    ato_dict = async_twin(to_dict)
