"""Job status codes, their names and the transitions the queue allows (pure data)."""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):
    """Status codes stored on `Job.status`; every API speaks the lower-case names."""

    PENDING = 0  # waiting: new, delayed, held by dependencies, or waiting to retry
    RUNNING = 1
    COMPLETE = 2
    FAILED = 3  # reserved: a terminal failure that was not dead-lettered
    DEAD = 4  # exhausted or not retryable; a DeadLetter row exists
    CANCELLED = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | JobStatus) -> JobStatus:
        """Accept a name ("pending"), a code (0) or a member; raise ValueError otherwise."""
        if isinstance(value, JobStatus):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, str):
            key = value.strip().upper()
            if key == "COMPLETED":
                key = "COMPLETE"
            if key in cls.__members__:
                return cls[key]
        names = ", ".join(s.label for s in cls)
        raise ValueError(f"unknown job status {value!r}; expected one of: {names}")


TERMINAL = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.DEAD}),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.COMPLETE,
            JobStatus.PENDING,  # retry, drain, or rescue of a lost worker
            JobStatus.FAILED,
            JobStatus.DEAD,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.COMPLETE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.DEAD: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

#: The one way out of a terminal status: an operator's `Queue.requeue_job` puts a failed, dead
#: or cancelled job back to pending (the same row, its retry count reset). Kept apart from
#: TRANSITIONS, which describes what the queue itself does to a job.
REQUEUE_FROM = frozenset({JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED})

CHOICES = [(s.value, s.label) for s in JobStatus]

# stats() keys, in order; status 2 is reported as "completed" like the original taskito.
STATS_KEYS: dict[JobStatus, str] = {
    JobStatus.PENDING: "pending",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETE: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.DEAD: "dead",
    JobStatus.CANCELLED: "cancelled",
}


def can_move(current: JobStatus, new: JobStatus) -> bool:
    """True when `new` may follow `current`."""
    return new in TRANSITIONS[current]


class WorkflowStatus(IntEnum):
    """Stored status of a workflow; `pending` and `running` are told apart from its steps."""

    ACTIVE = 0
    COMPLETE = 2
    FAILED = 3
    CANCELLED = 5

    @property
    def label(self) -> str:
        return self.name.lower()


WORKFLOW_CHOICES = [(s.value, s.label) for s in WorkflowStatus]
WORKFLOW_LABELS = ("pending", "running", "complete", "failed", "cancelled")


class BreakerState(IntEnum):
    """Stored state of a task's circuit breaker."""

    CLOSED = 0  # jobs run; failures are counted
    OPEN = 1  # jobs wait until the cooldown has passed
    HALF_OPEN = 2  # one probe job runs; the others wait for its outcome

    @property
    def label(self) -> str:
        return self.name.lower()


BREAKER_CHOICES = [(s.value, s.label) for s in BreakerState]
