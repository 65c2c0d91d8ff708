"""What the engine hands the runtime and takes back: a claimed attempt and how it ended."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

OutcomeKind = Literal["complete", "retry", "dead", "cancelled"]


@dataclass(slots=True)
class ClaimedJob:
    """A job this worker now runs; `token` fences every write about this attempt."""

    id: uuid.UUID
    task_name: str
    queue: str
    args: str
    kwargs: str
    priority: int
    scheduled_at: Any  # orders a claimed batch: a datetime, or SQLite's stored text
    attempts: int
    retry_count: int
    max_retries: int
    timeout_ms: int | None
    soft_timeout_ms: int | None
    token: str
    workflow_id: uuid.UUID | None = None
    workflow_step: int | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any], token: str,
                 to_uuid: Callable[[Any], uuid.UUID]) -> ClaimedJob:
        """From a row of `db.statements.CLAIM_COLUMNS`."""
        flow = row[12] if len(row) > 12 else None
        return cls(to_uuid(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                   row[9], row[10], row[11], token,
                   None if flow is None else to_uuid(flow), row[13] if flow is not None else None)


@dataclass(slots=True)
class Outcome:
    """How one attempt ended, as the executor decided it."""

    job: ClaimedJob
    kind: OutcomeKind
    wall_ms: float
    result: str | None = None  # JSON text
    error: str | None = None
    traceback: str = ""
    retry_at: datetime | None = None
    #: the exception itself, when the attempt ran in this process (for middleware hooks);
    #: never sent between processes
    exception: BaseException | None = None
