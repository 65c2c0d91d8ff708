"""Errors raised by taskito's public API."""

from __future__ import annotations


class TaskitoError(Exception):
    """Base class of every taskito error."""


class ConfigurationError(TaskitoError):
    """The TASKITO settings or a task's options are invalid."""


class SerializationError(TaskitoError, TypeError):
    """An argument, keyword argument or result is not JSON."""


class TaskNotRegistered(TaskitoError, LookupError):
    """No task is registered under that name."""


class JobNotFound(TaskitoError, LookupError):
    """No job (or dead letter) with that id exists."""


class TaskFailedError(TaskitoError):
    """The job ended in the `failed` status."""


class MaxRetriesExceededError(TaskFailedError):
    """The job exhausted its retries (or was not retryable) and is in the dead-letter queue."""


class TaskCancelledError(TaskitoError):
    """The job was cancelled (raised by `result()` and by `current_job.check_cancelled()`)."""

    #: set by check_cancelled(): the job whose cancellation this is
    job_id: object = None


class TaskTimeoutError(TaskitoError):
    """A job ran past its hard `timeout`; that attempt failed (and follows its retry policy)."""


class SoftTimeoutError(TaskitoError):
    """Raised by `current_job.check_timeout()` once a job runs past its soft timeout."""


class DependencyError(TaskitoError, ValueError):
    """A job names a dependency that does not exist or can never complete."""
