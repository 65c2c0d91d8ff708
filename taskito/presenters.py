"""Framework-free dicts for jobs, errors, logs and dead letters, shared by every surface."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskito.serialization import loads
from taskito.states import JobStatus


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """The job as the REST API shows it (no arguments, no result)."""
    return {
        "id": str(row["id"]),
        "queue": row["queue"],
        "task_name": row["task_name"],
        "status": JobStatus(row["status"]).label,
        "priority": row["priority"],
        "progress": row["progress"],
        "retry_count": row["retry_count"],
        "max_retries": row["max_retries"],
        "created_at": iso(row["created_at"]),
        "scheduled_at": iso(row["scheduled_at"]),
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        "error": row["error"],
        "timeout_ms": row["timeout_ms"],
        "unique_key": row["unique_key"],
        "metadata": loads(row["metadata"]),
    }


def error_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job_id": str(row["job_id"]),
        "attempt": row["attempt"],
        "error": row["error"],
        "failed_at": iso(row["failed_at"]),
    }


def log_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job_id": str(row["job_id"]),
        "task_name": row["task_name"],
        "level": row["level"],
        "message": row["message"],
        "extra": loads(row["extra"]),
        "logged_at": iso(row["logged_at"]),
    }


def dead_letter_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "original_job_id": str(row["original_job_id"]),
        "queue": row["queue"],
        "task_name": row["task_name"],
        "error": row["error"],
        "retry_count": row["retry_count"],
        "failed_at": iso(row["failed_at"]),
        "metadata": loads(row["metadata"]),
    }


def metric_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job_id": str(row["job_id"]),
        "task_name": row["task_name"],
        "queue": row["queue"],
        "succeeded": row["succeeded"],
        "wall_time_ms": row["wall_time_ms"],
        "recorded_at": iso(row["recorded_at"]),
    }
