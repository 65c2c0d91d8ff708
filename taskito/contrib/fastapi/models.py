"""The pydantic models of the FastAPI router's answers (its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class StatsResponse(BaseModel):
    pending: int
    running: int
    completed: int
    failed: int
    dead: int
    cancelled: int


class JobResponse(BaseModel):
    id: str
    queue: str
    task_name: str
    status: str
    priority: int
    progress: int
    retry_count: int
    max_retries: int
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    timeout_ms: int | None
    unique_key: str | None
    metadata: Any


class WorkflowStepResponse(BaseModel):
    job_id: str
    task_name: str
    status: str


class WorkflowResponse(BaseModel):
    id: str
    status: str
    steps: list[WorkflowStepResponse]
    result: Any


class JobErrorResponse(BaseModel):
    id: int
    job_id: str
    attempt: int
    error: str
    failed_at: datetime


class JobLogResponse(BaseModel):
    id: int
    job_id: str
    task_name: str
    level: str
    message: str
    extra: Any
    logged_at: datetime


class JobResultResponse(BaseModel):
    id: str
    status: str
    result: Any
    error: str | None


class CancelResponse(BaseModel):
    cancelled: bool


class RequeueResponse(BaseModel):
    requeued: bool


class RevokeResponse(BaseModel):
    revoked: int


class WorkerResponse(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    busy: int
    started_at: datetime
    last_heartbeat: datetime


class CircuitBreakerResponse(BaseModel):
    task_name: str
    state: Literal["closed", "open", "half_open"]
    failure_count: int
    opened_at: datetime | None


class DeadLetterResponse(BaseModel):
    id: str
    original_job_id: str
    queue: str
    task_name: str
    error: str | None
    retry_count: int
    failed_at: datetime
    metadata: Any


class RetryResponse(BaseModel):
    new_job_id: str


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str
    storage: bool
    workers: int | None


class ProgressEvent(BaseModel):
    """The JSON `data` of one progress stream event ("partial" only with ?partial=1)."""

    status: str
    progress: int
    partial: Any = None


class ErrorResponse(BaseModel):
    detail: str
