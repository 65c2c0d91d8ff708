"""What the router's OpenAPI (3.1) document says about each route: its query parameters,
typed and bounded as taskito.contrib.endpoints checks them (the endpoints parse the raw
query string themselves, so a bad value is a 400 naming it, not FastAPI's 422), and every
answer besides the 200: 400, 401/403, 404, 503."""

from __future__ import annotations

from typing import Any

from taskito.contrib import endpoints
from taskito.contrib.fastapi.models import ErrorResponse, ProgressEvent
from taskito.states import JobStatus

Responses = dict[int | str, dict[str, Any]]

NO_NUL = "^[^\u0000]*$"


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


PAGE = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": endpoints.MAX_PAGE,
                    "default": endpoints.DEFAULT_PAGE}, "page size"),
    query("offset", {"type": "integer", "minimum": 0, "maximum": endpoints.MAX_OFFSET,
                     "default": 0}, "rows to skip"),
]
FILTERS = [
    query("status", {"type": "string", "enum": [*(s.label for s in JobStatus), "completed"]},
          "only jobs in this status"),
    query("queue", {"type": "string", "maxLength": endpoints.MAX_TEXT, "pattern": NO_NUL},
          "only jobs of this queue"),
    query("task_name", {"type": "string", "maxLength": endpoints.MAX_TEXT,
                        "pattern": NO_NUL}, "only jobs of this task"),
]
TIMEOUT = [query("timeout", {"type": "number", "minimum": 0,
                             "maximum": endpoints.MAX_RESULT_WAIT, "default": 0},
                 "seconds to wait for a terminal status")]
PARTIAL = [query("partial", {"type": "boolean", "default": False},
                 "each event also carries the task's partial result")]

#: the query parameters of each route that has some
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "jobs": FILTERS + PAGE, "dead_letters": PAGE, "job_result": TIMEOUT,
    "job_progress": PARTIAL,
}


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


REFUSED: Responses = {401: error("Not authenticated (with an authentication that sends a "
                                 "challenge)"),
                      403: error("Not allowed (anonymous, not staff, no permission, CSRF)")}
NOT_FOUND: Responses = {404: error("No such job or dead letter")}
BAD_REQUEST: Responses = {400: error("A bad parameter; the detail names it")}
BUSY: Responses = {503: error("Too many result waits in this process (Retry-After)")}


def responses(name: str) -> Responses:
    """The non-200 answers of a route."""
    answers: Responses = dict(REFUSED)
    if name in PARAMETERS:
        answers.update(BAD_REQUEST)
    if "{" in endpoints.ROUTES[name][1]:
        answers.update(NOT_FOUND)
    if name == "job_result":
        answers.update(BUSY)
    return answers


def progress_stream() -> Responses:
    """The stream's 200: text/event-stream, each event's `data` a ProgressEvent in JSON; its
    refusals are JSON (filed inline, or they would be listed under text/event-stream)."""
    ok = {"description": "Server-sent events, each `data` a ProgressEvent in JSON: the "
                         "current state, then every change, until a terminal status or the "
                         "job's purge.",
          "content": {"text/event-stream": {
              "schema": {"type": "string",
                         "description": "`id: N` and `data: <ProgressEvent JSON>` lines"},
              "example": 'id: 1\ndata: {"status": "running", "progress": 40}\n\n',
              # the shape of each event's data, for readers of the document (OpenAPI 3.1
              # has no keyword for the items of a stream; 3.2's itemSchema is not valid here)
              "x-event-data": ProgressEvent.model_json_schema()}}}
    out: Responses = {200: ok}
    for status, answer in responses("job_progress").items():
        out[status] = {"description": answer["description"], "content": {
            "application/json": {"schema": ErrorResponse.model_json_schema()}}}
    return out
