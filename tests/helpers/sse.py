"""The Server-Sent Events wire format, read the way a browser's EventSource reads it: lines
`field: value`, an event ending at a blank line, comments starting with a colon."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    """One event: its data (decoded JSON for a message), its type (`event:`, "message" when
    absent), its id, and the names of the fields it came with."""

    data: Any
    kind: str = "message"
    id: int | None = None
    fields: set[str] = field(default_factory=set)


def events_in(lines: Iterable[str], timeout: float | None = None) -> Iterator[Event | str]:
    """Each event of a stream as it ends, and each comment line (as a str); fails once
    `timeout` seconds have passed (a stream that never ends must not hang a test)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        assert deadline is None or time.monotonic() < deadline, "the stream ran past its deadline"
        if line.startswith(":"):
            yield line
        elif line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            fields[name] = value
        elif fields:
            yield _event(fields, data)
            fields, data = {}, []
    if fields:
        yield _event(fields, data)


def _event(fields: dict[str, str], data: list[str]) -> Event:
    kind = fields.get("event", "message")
    text = "\n".join(data)
    # a message carries JSON; other kinds (django-eventstream's stream-open, ...) as they are
    return Event(data=json.loads(text) if kind == "message" else text, kind=kind,
                 id=int(fields["id"]) if "id" in fields else None, fields=set(fields))


def events_of(body: str) -> list[Event]:
    """The events of a whole stream body (comments left out)."""
    return [e for e in events_in(body.split("\n")) if isinstance(e, Event)]


def messages_of(body: str) -> list[Any]:
    """The data of each `message` event of a whole stream body."""
    return [e.data for e in events_of(body) if e.kind == "message"]
