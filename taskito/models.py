"""Django models for jobs and everything about them.

Arguments, keyword arguments, results and metadata are stored as JSON text: the hot paths write
them with plain SQL on every database, and they are decoded by `serialization.loads`.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from taskito.db.schema import without_replaced
from taskito.querysets import JobQuerySet
from taskito.states import (
    BREAKER_CHOICES,
    CHOICES,
    WORKFLOW_CHOICES,
    BreakerState,
    JobStatus,
    WorkflowStatus,
)

JobManager = models.Manager.from_queryset(JobQuerySet)


class Job(models.Model):
    """One unit of work; every state change goes through `taskito.queue.Queue`."""

    id = models.UUIDField(primary_key=True, editable=False)
    queue = models.CharField(max_length=200, default="default")
    task_name = models.CharField(max_length=255)
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    status = models.PositiveSmallIntegerField(choices=CHOICES, default=JobStatus.PENDING)
    priority = models.IntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="claims so far")
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=3)
    timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    soft_timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    scheduled_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    result_ttl = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    unique_key = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.TextField(null=True, blank=True)
    result = models.TextField(null=True, blank=True)
    partial_result = models.TextField(
        null=True, blank=True, help_text="JSON: the last partial result the task reported")
    error = models.TextField(null=True, blank=True)
    worker_id = models.CharField(max_length=100, null=True, blank=True)
    claim_token = models.CharField(max_length=32, null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    has_dependencies = models.BooleanField(default=False)
    # Workflow steps (chain/group/chord): the workflow, the step's place in its graph, and
    # how many of its parent steps have not completed yet (a waiting step is scheduled at
    # WAITING, so no claim sees it until the worker finishing its last parent releases it).
    workflow_id = models.UUIDField(null=True, blank=True)
    workflow_step = models.PositiveIntegerField(null=True, blank=True)
    workflow_waiting = models.PositiveIntegerField(null=True, blank=True)

    objects = JobManager()

    class Meta:
        db_table = "taskito_job"
        ordering = ["-created_at"]
        indexes = [
            # the claim: pending rows in priority, then due-time order (any queue / one queue)
            models.Index(fields=["-priority", "scheduled_at", "id"],
                         condition=Q(status=0), name="taskito_job_ready"),
            models.Index(fields=["queue", "-priority", "scheduled_at", "id"],
                         condition=Q(status=0), name="taskito_job_ready_queue"),
            # Partial on "not pending", so an enqueue (one write per index page) never touches
            # them; stats count pending rows through the ready indexes instead.
            models.Index(fields=["status", "queue"], condition=~Q(status=0),
                         name="taskito_job_status_queue"),
            models.Index(fields=["status", "completed_at"], condition=~Q(status=0),
                         name="taskito_job_finished"),
            models.Index(fields=["task_name", "status"], condition=~Q(status=0),
                         name="taskito_job_task"),
            models.Index(fields=["expires_at"],
                         condition=Q(status=0) & Q(expires_at__isnull=False),
                         name="taskito_job_expiry"),
            # partial: plain jobs (no workflow) never write to it
            models.Index(fields=["workflow_id", "workflow_step"],
                         condition=Q(workflow_id__isnull=False), name="taskito_job_workflow"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=[0, 1]) & Q(unique_key__isnull=False),
                name="taskito_job_unique_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.status_label}] {self.id}"

    @classmethod
    def check(cls, **kwargs: Any) -> list[Any]:
        # no partial indexes on MariaDB/MySQL: migration 0004 replaces them (db/schema.py)
        return without_replaced(super().check(**kwargs), kwargs.get("databases"))

    @property
    def status_label(self) -> str:
        return JobStatus(self.status).label


class Workflow(models.Model):
    """A chain, group or chord: its steps are Job rows with this `workflow_id`; the graph
    says which steps wait on which, and the worker that finishes a step advances it."""

    id = models.UUIDField(primary_key=True, editable=False)
    status = models.PositiveSmallIntegerField(choices=WORKFLOW_CHOICES,
                                              default=WorkflowStatus.ACTIVE)
    graph = models.TextField(help_text="JSON: parents, argument passing and delays per step")
    waiting = models.PositiveIntegerField(default=0, help_text="last steps not complete yet")
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "taskito_workflow"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"workflow {self.id} [{WorkflowStatus(self.status).label}]"


class DeadLetter(models.Model):
    """A copy of a job that exhausted its retries, kept until retried, deleted or purged."""

    id = models.UUIDField(primary_key=True, editable=False)
    original_job_id = models.UUIDField(db_index=True)
    queue = models.CharField(max_length=200)
    task_name = models.CharField(max_length=255)
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    priority = models.IntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=3)
    timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(db_index=True)
    metadata = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "taskito_dead_letter"
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_name} (job {self.original_job_id})"


class JobError(models.Model):
    """One failed attempt of a job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="error_rows")
    attempt = models.PositiveIntegerField()
    error = models.TextField()
    traceback = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "taskito_job_error"
        ordering = ["job", "attempt"]

    def __str__(self) -> str:
        return f"attempt {self.attempt}: {self.error[:80]}"


class TaskLog(models.Model):
    """A message a task wrote with `current_job.log()`."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_rows")
    task_name = models.CharField(max_length=255)
    level = models.CharField(max_length=10, default="info")
    message = models.TextField()
    extra = models.TextField(null=True, blank=True)
    logged_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "taskito_task_log"
        ordering = ["logged_at", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class TaskMetric(models.Model):
    """Wall time and outcome of one run of a task."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metric_rows")
    task_name = models.CharField(max_length=255)
    queue = models.CharField(max_length=200)
    succeeded = models.BooleanField()
    wall_time_ms = models.FloatField()
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "taskito_task_metric"
        ordering = ["-recorded_at"]
        indexes = [models.Index(fields=["recorded_at", "task_name"], name="taskito_metric_time")]

    def __str__(self) -> str:
        return f"{self.task_name} {self.wall_time_ms:.1f} ms"


class JobDependency(models.Model):
    """`job` may only run once `depends_on` is complete."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependency_links")
    depends_on = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependent_links")

    class Meta:
        db_table = "taskito_job_dependency"
        constraints = [
            models.UniqueConstraint(fields=["job", "depends_on"], name="taskito_dependency_once")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} after {self.depends_on_id}"


class ReplayHistory(models.Model):
    """A finished job that was run again as a new job."""

    original_job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="replays")
    replay_job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="replayed_from")
    replayed_at = models.DateTimeField()

    class Meta:
        db_table = "taskito_replay_history"
        ordering = ["-replayed_at"]

    def __str__(self) -> str:
        return f"{self.original_job_id} -> {self.replay_job_id}"


class PeriodicTask(models.Model):
    """A cron schedule that enqueues a task; rows survive restarts and can be disabled."""

    name = models.CharField(max_length=200, unique=True)
    task_name = models.CharField(max_length=255)
    cron = models.CharField(max_length=120)
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    queue = models.CharField(max_length=200, null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "taskito_periodic_task"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron})"


class WorkerHeartbeat(models.Model):
    """A live (or recently live) worker process."""

    worker_id = models.CharField(max_length=100, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.TextField(default="*")
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "taskito_worker"
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.worker_id


class QueueState(models.Model):
    """Per-queue switches (paused) that every worker honours."""

    name = models.CharField(max_length=200, primary_key=True)
    paused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "taskito_queue_state"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Lease(models.Model):
    """A named lease held by one worker until it expires (for example the lifeline leader)."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=100)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "taskito_lease"

    def __str__(self) -> str:
        return f"{self.name} -> {self.holder}"


class Throttle(models.Model):
    """Shared counters for rate limits (runs in the current fixed window) and concurrency
    limits (runs in progress), updated with single conditional statements by every worker."""

    key = models.CharField(max_length=300, primary_key=True)
    window_no = models.BigIntegerField(default=0, help_text="window number (rate limits)")
    count = models.IntegerField(default=0)

    class Meta:
        db_table = "taskito_throttle"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"

    @classmethod
    def check(cls, **kwargs: Any) -> list[Any]:
        # the 300-character key fits the supported MariaDB/MySQL servers (db/schema.py)
        return without_replaced(super().check(**kwargs), kwargs.get("databases"))


class CircuitBreaker(models.Model):
    """The circuit breaker of one task (`@queue.task(circuit_breaker={...})`), shared by
    every worker: closed (jobs run; failures are counted in a window), open (jobs wait out
    the cooldown) or half-open (one probe job runs; the others wait for its outcome)."""

    task_name = models.CharField(max_length=255, primary_key=True)
    state = models.PositiveSmallIntegerField(choices=BREAKER_CHOICES,
                                             default=BreakerState.CLOSED)
    failure_count = models.PositiveIntegerField(default=0, help_text="in the current window")
    window_start = models.DateTimeField(null=True, blank=True,
                                        help_text="first failure of the current window")
    opened_at = models.DateTimeField(null=True, blank=True)
    probe_job_id = models.UUIDField(null=True, blank=True, help_text="the half-open probe")
    probe_at = models.DateTimeField(null=True, blank=True, help_text="when the probe began")

    class Meta:
        db_table = "taskito_circuit_breaker"
        ordering = ["task_name"]

    def __str__(self) -> str:
        return f"{self.task_name} [{BreakerState(self.state).label}]"
