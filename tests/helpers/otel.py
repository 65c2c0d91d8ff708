"""OpenTelemetry SDK plumbing for the tracing tests: an in-memory provider for the test's own
process, and for worker subprocesses an exporter that appends each finished span to a file as
one JSON line (installed by tests/settings.py when TASKITO_TEST_OTEL_SPANS names the file)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["FileSpanExporter", "InMemorySpanExporter", "as_dict", "in_memory_provider",
           "install_file_exporter", "read_spans"]


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    """The parts of a finished span the tests look at, ids as hex (as in traceparent)."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": None if parent is None else f"{parent.span_id:016x}",
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "description": span.status.description,
        "events": [event.name for event in span.events],
        "pid": os.getpid(),
    }


class FileSpanExporter(SpanExporter):
    """Appends each span as a JSON line to `path` (processes may share the file: each line is
    written with one append)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(as_dict(span)) + "\n" for span in spans)
        with open(self.path, "a") as fh:
            fh.write(text)
        return SpanExportResult.SUCCESS


def install_file_exporter(path: str) -> None:
    """The global tracer provider of this process exports every span to `path` at once."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))
    trace.set_tracer_provider(provider)


def in_memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider (not the global one) whose spans the test reads from the exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
