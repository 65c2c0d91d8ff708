"""DRF serializers that describe the JSON for the OpenAPI schema. The bodies themselves are
built by taskito.presenters (shared with FastAPI and the admin), not by these."""

from __future__ import annotations

from rest_framework import serializers


class StatsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    dead = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    queue = serializers.CharField()
    task_name = serializers.CharField()
    status = serializers.CharField()
    priority = serializers.IntegerField()
    progress = serializers.IntegerField()
    retry_count = serializers.IntegerField()
    max_retries = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    scheduled_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    timeout_ms = serializers.IntegerField(allow_null=True)
    unique_key = serializers.CharField(allow_null=True)
    metadata = serializers.JSONField(allow_null=True)


class JobErrorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.UUIDField()
    attempt = serializers.IntegerField()
    error = serializers.CharField()
    failed_at = serializers.DateTimeField()


class JobLogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.UUIDField()
    task_name = serializers.CharField()
    level = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.JSONField(allow_null=True)
    logged_at = serializers.DateTimeField()


class JobResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class CancelSerializer(serializers.Serializer):
    cancelled = serializers.BooleanField()


class RequeueSerializer(serializers.Serializer):
    requeued = serializers.BooleanField()


class RevokeSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


class WorkerSerializer(serializers.Serializer):
    id = serializers.CharField()
    host = serializers.CharField()
    pid = serializers.IntegerField()
    queues = serializers.ListField(child=serializers.CharField())
    concurrency = serializers.IntegerField()
    busy = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    last_heartbeat = serializers.DateTimeField()


class CircuitBreakerSerializer(serializers.Serializer):
    task_name = serializers.CharField()
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    failure_count = serializers.IntegerField()
    opened_at = serializers.DateTimeField(allow_null=True)


class DeadLetterSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    original_job_id = serializers.UUIDField()
    queue = serializers.CharField()
    task_name = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    retry_count = serializers.IntegerField()
    failed_at = serializers.DateTimeField()
    metadata = serializers.JSONField(allow_null=True)


class RetrySerializer(serializers.Serializer):
    new_job_id = serializers.UUIDField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()


class ReadinessSerializer(serializers.Serializer):
    status = serializers.CharField()
    storage = serializers.BooleanField()
    workers = serializers.IntegerField(allow_null=True)


class WorkflowStepSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    task_name = serializers.CharField()
    status = serializers.CharField()


class WorkflowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    steps = WorkflowStepSerializer(many=True)
    result = serializers.JSONField(allow_null=True)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()
