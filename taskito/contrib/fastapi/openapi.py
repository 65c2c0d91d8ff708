"""What the router's OpenAPI (3.1) document says about each route: its query parameters,
typed and bounded as taskito.contrib.endpoints checks them (the endpoints parse the raw
query string themselves, so a bad value is a 400 naming it, not FastAPI's 422), and every
answer besides the 200: 400, 401/403, 404, 503."""

from __future__ import annotations

from typing import Any

from taskito.contrib import endpoints
from taskito.contrib.fastapi.models import ErrorResponse, ProgressEvent

Responses = dict[int | str, dict[str, Any]]

#: the query parameters of each route that has some (endpoints.PARAMETERS, as OpenAPI
#: parameter objects)
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    name: [{"in": "query", "required": False, **param} for param in params]
    for name, params in endpoints.PARAMETERS.items()}


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
    if name in PARAMETERS or name in endpoints.CHECKED_PATH:
        answers.update(BAD_REQUEST)
    if "{" in endpoints.ROUTES[name][1] and name not in endpoints.NO_NOT_FOUND:
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
