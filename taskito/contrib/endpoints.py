"""The HTTP endpoints as plain functions: parse raw query strings, call Queue, return the
JSON body. DRF and FastAPI are thin shells over these, so the two surfaces cannot drift."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.contrib import waits
from taskito.exceptions import JobNotFound
from taskito.presenters import iso, job_dict
from taskito.queue import Queue
from taskito.serialization import UNSET, loads
from taskito.states import TERMINAL, JobStatus

MAX_PAGE = 100
DEFAULT_PAGE = 20
#: the largest `offset`: past it no database would return rows, and 2**63 overflows them
MAX_OFFSET = 2**31 - 1
MAX_RESULT_WAIT = 300
#: the longest text parameter (queue and task names are at most 255 characters)
MAX_TEXT = 255
#: how much of a client's input an error message repeats
ECHO_LIMIT = 64
#: an integer parameter as written: one optional sign, then 1 to 19 ASCII digits (no "1_0",
#: "²", "1e9", "--1" or "+-5", which Python's int() would partly accept or choke on)
INTEGER = re.compile(r"[+-]?[0-9]{1,19}")

#: route name -> (method, path); the names are what FastAPI's include/exclude_routes take
ROUTES: dict[str, tuple[str, str]] = {
    "stats": ("GET", "/stats"),
    "stats_queues": ("GET", "/stats/queues"),
    "jobs": ("GET", "/jobs"),
    "job": ("GET", "/jobs/{job_id}"),
    "job_errors": ("GET", "/jobs/{job_id}/errors"),
    "job_logs": ("GET", "/jobs/{job_id}/logs"),
    "job_result": ("GET", "/jobs/{job_id}/result"),
    "job_progress": ("GET", "/jobs/{job_id}/progress"),
    "job_cancel": ("POST", "/jobs/{job_id}/cancel"),
    "job_requeue": ("POST", "/jobs/{job_id}/requeue"),
    "task_revoke": ("POST", "/tasks/{task_name}/revoke"),
    "workers": ("GET", "/workers"),
    "circuit_breakers": ("GET", "/circuit-breakers"),
    "dead_letters": ("GET", "/dead-letters"),
    "dead_letter_retry": ("POST", "/dead-letters/{dead_id}/retry"),
    "workflow": ("GET", "/workflows/{workflow_id}"),
    "workflow_progress": ("GET", "/workflows/{workflow_id}/progress"),
    "health": ("GET", "/health"),
    "readiness": ("GET", "/readiness"),
}
#: routes with a path parameter that never answer 404: an unknown id or name acts on nothing
#: (false / 0), as the Queue call does
NO_NOT_FOUND = frozenset({"job_requeue", "task_revoke"})
#: routes whose path parameter itself may be refused with a 400 (a task name with a NUL)
CHECKED_PATH = frozenset({"task_revoke"})


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "schema": schema, "description": description}


#: a text without NUL (PostgreSQL cannot compare one)
NO_NUL = "^[^\u0000]*$"
_PAGE = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
                     "default": DEFAULT_PAGE}, "page size"),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
           "rows to skip"),
]
_FILTERS = [
    _query("status", {"type": "string", "enum": [*(s.label for s in JobStatus), "completed"]},
           "only jobs in this status"),
    _query("queue", {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_NUL},
           "only jobs of this queue"),
    _query("task_name", {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_NUL},
           "only jobs of this task"),
]
#: route name -> its query parameters ({name, schema, description}, the schema typed and
#: bounded as the parsers below check it): what both OpenAPI documents say
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "jobs": _FILTERS + _PAGE,
    "dead_letters": _PAGE,
    "job_result": [_query("timeout", {"type": "number", "minimum": 0,
                                      "maximum": MAX_RESULT_WAIT, "default": 0},
                          "seconds to wait for a terminal status")],
    "job_progress": [_query("partial", {"type": "boolean", "default": False},
                            "each event also carries the task's partial result")],
}


class ApiError(Exception):
    """A client's mistake: the HTTP status and the `detail` to answer with."""

    def __init__(self, status: int, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def echo(raw: Any) -> str:
    """A client's input as an error message repeats it: cut after ECHO_LIMIT characters."""
    text = str(raw)
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT] + "..."


def bad(name: str, expected: str, raw: Any) -> ApiError:
    return ApiError(400, f"{name} must be {expected}, not {echo(raw)!r}")


def not_found(kind: str, ident: Any) -> ApiError:
    return ApiError(404, f"{kind} {echo(ident)} not found")


def int_param(params: Mapping[str, Any], name: str, default: int, lo: int,
              hi: int) -> int:
    """An integer query parameter within [lo, hi]; 400 naming it otherwise."""
    raw = params.get(name)
    if raw is None:
        return default
    expected = f"an integer from {lo} to {hi}"
    text = str(raw).strip()
    if INTEGER.fullmatch(text) is None:
        raise bad(name, expected, raw)
    value = int(text)
    if not lo <= value <= hi:
        raise bad(name, expected, raw)
    return value


def text_param(params: Mapping[str, Any], name: str) -> str | None:
    """A text query parameter (a filter): at most MAX_TEXT characters, no NUL (which
    PostgreSQL cannot compare); 400 naming it otherwise."""
    raw = params.get(name)
    if raw is None:
        return None
    text = str(raw)
    if len(text) > MAX_TEXT or "\x00" in text:
        raise bad(name, f"a text of at most {MAX_TEXT} characters without NUL", raw)
    return text


def timeout_param(params: Mapping[str, Any]) -> float:
    """`timeout`: seconds to wait for a result, 0..300 (default 0: answer at once)."""
    raw = params.get("timeout")
    if raw is None:
        return 0.0
    expected = f"a number of seconds from 0 to {MAX_RESULT_WAIT}"
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise bad("timeout", expected, raw) from None
    if not math.isfinite(value) or not 0 <= value <= MAX_RESULT_WAIT:
        raise bad("timeout", expected, raw)
    return value


def _job_row(queue: Queue, job_id: str) -> dict[str, Any]:
    row = queue.fetch_job_row(job_id)  # a malformed id is simply not found
    if row is None:
        raise not_found("job", job_id)
    return row


def close_idle_connections() -> None:
    """Close this thread's database connections that are not inside a transaction: a view
    that waits or streams should hold none while it waits."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def release_connections() -> None:
    """Close this thread's connections that are broken or older than CONN_MAX_AGE (all of
    them with the default 0), as Django does around a request; never one inside a
    transaction. Neither FastAPI nor a pool thread sends Django's request signals."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def _released(fn: Any, *args: Any) -> Any:
    release_connections()
    try:
        return fn(*args)
    finally:
        release_connections()


async def off_loop(fn: Any, *args: Any) -> Any:
    """Run a blocking call in a pool thread between connection clean-ups (release_connections):
    the one way the waits of every surface, and their poller, reach the database."""
    return await sync_to_async(_released, thread_sensitive=False)(fn, *args)


# -- the endpoints ---------------------------------------------------------------------------
def stats(queue: Queue) -> dict[str, int]:
    return queue.stats()


def stats_by_queue(queue: Queue) -> dict[str, dict[str, int]]:
    return queue.stats_by_queue()


def list_jobs(queue: Queue, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Newest first; `limit` 1..100 (20), `offset` >= 0, filters status, queue, task_name."""
    limit = int_param(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    status = text_param(params, "status")
    if status is not None:
        try:
            JobStatus.parse(status)
        except ValueError:
            names = ", ".join(s.label for s in JobStatus)
            raise bad("status", f"one of {names}", status) from None
    jobs = queue.list_jobs(status=status, queue=text_param(params, "queue"),
                           task_name=text_param(params, "task_name"), limit=limit,
                           offset=offset)
    return [job.to_dict() for job in jobs]


def get_job(queue: Queue, job_id: str) -> dict[str, Any]:
    return job_dict(_job_row(queue, job_id))


def get_workflow(queue: Queue, workflow_id: str) -> dict[str, Any]:
    """`{id, status, steps: [{job_id, task_name, status}], result}`; 404 for an unknown id."""
    found = queue.get_workflow(workflow_id)  # a malformed id is simply not found
    if found is None:
        raise not_found("workflow", workflow_id)
    return found.to_dict()


def job_errors(queue: Queue, job_id: str) -> list[dict[str, Any]]:
    _job_row(queue, job_id)
    return queue.job_errors(job_id)


def job_logs(queue: Queue, job_id: str) -> list[dict[str, Any]]:
    _job_row(queue, job_id)
    return queue.task_logs(job_id)


def result_snapshot(row: dict[str, Any]) -> dict[str, Any]:
    status = JobStatus(row["status"])
    return {
        "id": str(row["id"]),
        "status": status.label,
        "result": loads(row["result"]) if status == JobStatus.COMPLETE else None,
        "error": row["error"],
    }


async def await_result(queue: Queue, job_id: str, timeout: float) -> dict[str, Any]:
    """{id, status, result, error} once the job is terminal or `timeout` seconds passed
    (then with the current status and a null result: waiting out is not an error). Waits on
    the event loop (taskito.contrib.waits): no thread and no connection is held meanwhile;
    503 past TASKITO["RESULT_WAIT_LIMIT"] waits in this process."""
    row = await off_loop(_job_row, queue, job_id)
    if row["status"] not in TERMINAL and timeout > 0:
        try:
            exists = await waits.until_terminal(queue, row["id"], timeout, off_loop)
        except waits.WaitLimitReached as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
        if not exists:
            raise not_found("job", job_id)
        row = await off_loop(_job_row, queue, job_id)
    return result_snapshot(row)


def progress_event(status: int, progress: int, partial: Any = UNSET) -> dict[str, Any]:
    """The body of one progress event: status and progress, and the partial result when
    given; never arguments, results or tracebacks (what SSE streams send)."""
    event = {"status": JobStatus(status).label, "progress": progress}
    if partial is not UNSET:
        event["partial"] = partial
    return event


def flag_param(params: Mapping[str, Any], name: str) -> bool:
    """A true/false query parameter (1/0, true/false, yes/no); absent is false."""
    raw = params.get(name)
    if raw is None:
        return False
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise bad(name, "true or false", raw)


def is_terminal(status: int) -> bool:
    return status in TERMINAL


def progress_state(queue: Queue, job_id: str, partial: bool = False) -> dict[str, Any] | None:
    """The job's progress event ({"status", "progress"}, and "partial" when asked) from one
    query; None when there is no such job."""
    row = next(iter(queue.job_progress([job_id], partial=partial).values()), None)
    if row is None:
        return None
    return progress_event(row[0], row[1], loads(row[2]) if partial else UNSET)


def first_progress_state(queue: Queue, job_id: str, partial: bool = False) -> dict[str, Any]:
    """The event a progress stream starts with; 404 before streaming for an unknown job."""
    state = progress_state(queue, job_id, partial)
    if state is None:
        raise not_found("job", job_id)
    return state


def event_is_terminal(event: Mapping[str, Any]) -> bool:
    """Whether a progress event's status is final (the stream ends after it)."""
    return JobStatus.parse(event["status"]) in TERMINAL


#: seconds of silence after which a progress stream sends a comment line
KEEP_ALIVE = 15.0
#: the statuses a workflow's progress stream ends on
WORKFLOW_FINAL = frozenset({"complete", "failed", "cancelled"})


def workflow_progress_state(queue: Queue, workflow_id: str) -> dict[str, Any] | None:
    """A workflow's progress event: {"status", "progress"} where progress is the share of
    its steps that have finished (0..100); None for an unknown workflow."""
    found = queue.workflow_progress(workflow_id)
    if found is None:
        return None
    share = 100 * found["finished"] // found["steps"] if found["steps"] else 0
    return {"status": found["status"], "progress": share}


def first_workflow_progress_state(queue: Queue, workflow_id: str) -> dict[str, Any]:
    """The event a workflow's stream starts with; 404 before streaming for an unknown one."""
    state = workflow_progress_state(queue, workflow_id)
    if state is None:
        raise not_found("workflow", workflow_id)
    return state


def workflow_event_is_terminal(event: Mapping[str, Any]) -> bool:
    return event["status"] in WORKFLOW_FINAL


def cancel_job(queue: Queue, job_id: str) -> dict[str, bool]:
    """A pending job is cancelled at once; a running one is asked to stop."""
    _job_row(queue, job_id)
    return {"cancelled": queue.cancel_job(job_id) or queue.cancel_running_job(job_id)}


def requeue_job(queue: Queue, job_id: str) -> dict[str, bool]:
    """A failed, dead or cancelled job back to pending; false for any other or unknown id."""
    return {"requeued": queue.requeue_job(job_id)}


def revoke_task(queue: Queue, task_name: str) -> dict[str, int]:
    """Cancel every pending job of the task; how many were."""
    name = text_param({"task_name": task_name}, "task_name")
    return {"revoked": queue.revoke_task(name or "")}


def workers(queue: Queue) -> list[dict[str, Any]]:
    """The workers' heartbeats, newest first, with their busy slots."""
    return [{**w, "started_at": iso(w["started_at"]), "last_heartbeat": iso(w["last_heartbeat"])}
            for w in queue.workers()]


def circuit_breakers(queue: Queue) -> list[dict[str, Any]]:
    """Every task's circuit breaker: {task_name, state, failure_count, opened_at}."""
    return [{**b, "opened_at": iso(b["opened_at"])} for b in queue.circuit_breakers()]


def dead_letters(queue: Queue, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    limit = int_param(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    return queue.dead_letters(limit=limit, offset=offset)


def retry_dead(queue: Queue, dead_id: str) -> dict[str, str]:
    try:
        new = queue.retry_dead(dead_id)
    except JobNotFound:
        raise not_found("dead letter", dead_id) from None
    return {"new_job_id": str(new)}


def health() -> dict[str, str]:
    """Liveness: the process answers; no database query."""
    return {"status": "ok"}


def readiness(queue: Queue) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 when the job tables cannot be read. Live workers (a
    heartbeat newer than WORKER_STALE_AFTER) are reported, not required: a web process is
    ready to accept jobs even while no worker runs."""
    from taskito.models import WorkerHeartbeat

    try:
        queue.job_model.objects.using(queue.using).exists()
        cutoff = timezone.now() - timedelta(seconds=taskito_settings.WORKER_STALE_AFTER)
        workers = WorkerHeartbeat.objects.using(queue.using).filter(
            last_seen__gte=cutoff).count()
    except Exception:  # any database error means "not ready"; the probe must answer
        connections[queue.using].close_if_unusable_or_obsolete()
        return 503, {"status": "unavailable", "storage": False, "workers": None}
    return 200, {"status": "ready", "storage": True, "workers": workers}
