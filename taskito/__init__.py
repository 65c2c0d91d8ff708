"""taskito: a task queue that lives in your Django database."""

from __future__ import annotations

from taskito.context import current_job
from taskito.exceptions import (
    ConfigurationError,
    DependencyError,
    JobNotFound,
    MaxRetriesExceededError,
    SerializationError,
    SoftTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskitoError,
    TaskNotRegistered,
    TaskTimeoutError,
)
from taskito.middleware import TaskContext, TaskMiddleware
from taskito.queue import Queue, queue
from taskito.result import JobResult
from taskito.states import JobStatus
from taskito.task import Task
from taskito.workflow_result import WorkflowResult
from taskito.workflows import Signature, chain, chord, group

# `taskito.queue` is both a module and the default Queue; the import above binds the name to
# the Queue (importing the package never needs Django settings or the app registry).
task = queue.task

__all__ = [
    "ConfigurationError",
    "DependencyError",
    "JobNotFound",
    "JobResult",
    "JobStatus",
    "MaxRetriesExceededError",
    "Queue",
    "SerializationError",
    "Signature",
    "SoftTimeoutError",
    "Task",
    "TaskCancelledError",
    "TaskContext",
    "TaskFailedError",
    "TaskMiddleware",
    "TaskNotRegistered",
    "TaskTimeoutError",
    "TaskitoError",
    "WorkflowResult",
    "chain",
    "chord",
    "current_job",
    "group",
    "queue",
    "task",
]

__version__ = "0.1.0"
