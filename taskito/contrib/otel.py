"""OpenTelemetry traces for jobs, through `opentelemetry-api` only (the `otel` extra): the
application installs the SDK and its exporter, as for any other library.

    TASKITO = {"MIDDLEWARE": ["taskito.contrib.otel.OpenTelemetryMiddleware"]}

At enqueue a PRODUCER span `send <task>` starts under the caller's current span, and its W3C
trace context (`traceparent`, `tracestate`) goes into the job's metadata under the key
`"otel"`. In the worker each attempt is a CONSUMER span `process <task>`, a child of that
context, current while the task runs (spans the task starts nest under it), with the task
name, job id, queue, attempt and outcome as attributes, and a failure recorded on it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from taskito.exceptions import TaskCancelledError, TaskTimeoutError
from taskito.middleware import TaskContext, TaskMiddleware
from taskito.registry import registry

__all__ = ["CARRIER_KEY", "OpenTelemetryMiddleware"]

#: the key of the job's metadata that carries the trace context
CARRIER_KEY = "otel"
TRACER_NAME = "taskito"


class OpenTelemetryMiddleware(TaskMiddleware):
    """Traces each enqueue and each attempt (see the module's docstring).

    `tracer_provider`: the provider to use (default: the global one, set by the SDK's
    `trace.set_tracer_provider`); `producer_spans=False` only passes the caller's context
    on, without a span of its own at enqueue. A job whose metadata is neither a dict nor
    None carries no context: its attempts are root spans."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *,
                 producer_spans: bool = True) -> None:
        self.tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self.producer_spans = producer_spans
        #: the running attempts' spans, by (job id, attempt): a hard timeout ends the span
        #: from the worker's loop while the task's thread may still run
        self._spans: dict[tuple[uuid.UUID, int], Span] = {}
        #: the context tokens to detach in `after` (in the task's thread)
        self._tokens: dict[tuple[uuid.UUID, int], Token[Context]] = {}
        self._lock = threading.Lock()

    # -- enqueue -----------------------------------------------------------------------------
    def on_enqueue(self, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   options: dict[str, Any]) -> None:
        metadata = options.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            return
        carrier: dict[str, str] = {}
        if self.producer_spans:
            attributes = {"messaging.system": "taskito", "messaging.operation.type": "send",
                          "taskito.task_name": task_name}
            if isinstance(options.get("queue"), str):
                attributes["messaging.destination.name"] = options["queue"]
            with self.tracer.start_as_current_span(f"send {task_name}", kind=SpanKind.PRODUCER,
                                                   attributes=attributes):
                propagate.inject(carrier)
        else:
            propagate.inject(carrier)
        if carrier:  # nothing to carry without a recording span (no SDK, or not sampled)
            options["metadata"] = {**(metadata or {}), CARRIER_KEY: carrier}

    # -- the attempt ---------------------------------------------------------------------------
    def before(self, ctx: TaskContext) -> None:
        span = self._start(ctx)
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._spans[(ctx.job_id, ctx.attempt)] = span
            self._tokens[(ctx.job_id, ctx.attempt)] = token

    def after(self, ctx: TaskContext, result: Any, error: BaseException | None) -> None:
        with self._lock:
            span = self._spans.pop((ctx.job_id, ctx.attempt), None)
            token = self._tokens.pop((ctx.job_id, ctx.attempt), None)
        if token is not None:
            otel_context.detach(token)
        if span is not None:  # else on_timeout has ended it
            _end(span, ctx, error)

    def on_timeout(self, ctx: TaskContext) -> None:
        with self._lock:
            span = self._spans.pop((ctx.job_id, ctx.attempt), None)
        if span is None:  # it ran in a child process (--pool process), now killed
            span = self._start(ctx)
        _end(span, ctx, TaskTimeoutError("the attempt ran past its hard timeout"))

    def _start(self, ctx: TaskContext) -> Span:
        carrier = _carrier(ctx.metadata)
        parent = propagate.extract(carrier) if carrier else Context()
        return self.tracer.start_span(
            f"process {ctx.task_name}", context=parent, kind=SpanKind.CONSUMER, attributes={
                "messaging.system": "taskito", "messaging.operation.type": "process",
                "messaging.destination.name": ctx.queue,
                "messaging.message.id": str(ctx.job_id),
                "taskito.task_name": ctx.task_name, "taskito.job_id": str(ctx.job_id),
                "taskito.queue": ctx.queue, "taskito.attempt": ctx.attempt,
                "taskito.retry_count": ctx.retry_count})


def _carrier(metadata: Any) -> dict[str, str] | None:
    if not isinstance(metadata, Mapping):
        return None
    carrier = metadata.get(CARRIER_KEY)
    if not isinstance(carrier, Mapping):
        return None
    return {str(k): v for k, v in carrier.items() if isinstance(v, str)}


def _end(span: Span, ctx: TaskContext, error: BaseException | None) -> None:
    span.set_attribute("taskito.outcome", outcome(ctx, error))
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def outcome(ctx: TaskContext, error: BaseException | None) -> str:
    """How the attempt ends: complete, cancelled, retry or dead, decided as the executor
    decides it (the task's retry_on / dont_retry_on, and the retries left)."""
    if error is None:
        return "complete"
    if isinstance(error, TaskCancelledError) and getattr(error, "job_id", None) == ctx.job_id:
        return "cancelled"
    spec = registry.resolve(ctx.task_name)
    if (spec is not None and spec.should_retry(error) and ctx.max_retries is not None
            and ctx.retry_count < ctx.max_retries):
        return "retry"
    return "dead"
