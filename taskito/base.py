"""QueueBase: a queue's database alias, its defaults (from arguments, else from the TASKITO
setting, read when first needed) and its models (imported late, so that a Queue can be built
before the app registry is ready)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from taskito.conf import taskito_settings
from taskito.db import Dialect, get_dialect
from taskito.serialization import UNSET

if TYPE_CHECKING:
    import uuid

    from taskito.result import JobResult


class QueueBase:
    """State every part of Queue shares."""

    def __init__(self, *, using: str | None = None, default_queue: str | None = None,
                 default_priority: int | None = None, default_max_retries: int | None = None,
                 default_timeout: float | None = UNSET, result_ttl: float | None = UNSET,
                 poll_interval: float | None = None) -> None:
        self._plans: dict[tuple[str, int], Any] = {}
        self._using = using
        self._default_queue = default_queue
        self._default_priority = default_priority
        self._default_max_retries = default_max_retries
        self._default_timeout = default_timeout
        self._result_ttl = result_ttl
        self._poll_interval = poll_interval
        #: the active `test_mode()` (taskito.testing.TestMode), or None
        self.test_mode_state: Any = None

    def __repr__(self) -> str:
        return f"<Queue using={self._using or 'settings'}>"

    # -- settings-backed defaults ------------------------------------------------------------
    @property
    def using(self) -> str:
        return self._using or str(taskito_settings.DATABASE)

    @property
    def default_queue(self) -> str:
        return self._default_queue or str(taskito_settings.DEFAULT_QUEUE)

    @property
    def default_priority(self) -> int:
        value = self._default_priority
        return int(taskito_settings.DEFAULT_PRIORITY if value is None else value)

    @property
    def default_max_retries(self) -> int:
        value = self._default_max_retries
        return int(taskito_settings.DEFAULT_MAX_RETRIES if value is None else value)

    @property
    def default_timeout(self) -> float | None:
        value = self._default_timeout
        result: float | None = taskito_settings.DEFAULT_TIMEOUT if value is UNSET else value
        return result

    @property
    def result_ttl(self) -> float | None:
        value = self._result_ttl
        result: float | None = taskito_settings.RESULT_TTL if value is UNSET else value
        return result

    @property
    def poll_interval(self) -> float:
        return float(self._poll_interval or taskito_settings.POLL_INTERVAL)

    @property
    def dialect(self) -> Dialect:
        return get_dialect(self.using)

    # -- models (imported late: a Queue may be built before the app registry is ready) -----
    @property
    def job_model(self) -> Any:
        from taskito.models import Job

        return Job

    @property
    def dead_letter_model(self) -> Any:
        from taskito.models import DeadLetter

        return DeadLetter

    @property
    def error_model(self) -> Any:
        from taskito.models import JobError

        return JobError

    @property
    def log_model(self) -> Any:
        from taskito.models import TaskLog

        return TaskLog

    @property
    def metric_model(self) -> Any:
        from taskito.models import TaskMetric

        return TaskMetric

    @property
    def dependency_model(self) -> Any:
        from taskito.models import JobDependency

        return JobDependency

    @property
    def replay_model(self) -> Any:
        from taskito.models import ReplayHistory

        return ReplayHistory

    @property
    def periodic_model(self) -> Any:
        from taskito.models import PeriodicTask

        return PeriodicTask

    @property
    def queue_state_model(self) -> Any:
        from taskito.models import QueueState

        return QueueState

    def handle(self, job_id: uuid.UUID, row: dict[str, Any] | None = None,
               created: bool = True) -> JobResult:
        """A JobResult bound to this queue (the full Queue, whatever part asks)."""
        from taskito.result import JobResult, JobSource

        return JobResult(cast(JobSource, self), job_id, row, created=created)
