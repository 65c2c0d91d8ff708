"""Queue.overview() for a terminal (`manage.py taskito_info`): JSON for scripts, plain text,
and rich tables for the live `--watch` display (the `cli` extra; plain text without it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskito.presenters import iso

QUEUE_COLUMNS = ("queue", "state", "pending", "running", "completed", "failed", "dead",
                 "cancelled", "oldest pending", "runs", "failures", "workers")
WORKER_COLUMNS = ("worker", "host", "pid", "queues", "concurrency", "busy", "last heartbeat")


def as_json(overview: dict[str, Any]) -> dict[str, Any]:
    """The overview with datetimes as ISO 8601 text (the shape of `taskito_info --json`)."""
    def points(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**p, "minute": iso(p["minute"])} for p in timeline]

    return {
        **overview,
        "now": iso(overview["now"]),
        "throughput": points(overview["throughput"]),
        "queues": [{**q, "throughput": points(q["throughput"])} for q in overview["queues"]],
        "workers": [{**w, "started_at": iso(w["started_at"]),
                     "last_heartbeat": iso(w["last_heartbeat"])} for w in overview["workers"]],
    }


def age(seconds: float | None) -> str:
    """'-' for nothing, else a short age: '42s', '3m05s', '2h07m', '3d04h'."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def heading(overview: dict[str, Any]) -> str:
    alive = sum(1 for w in overview["workers"] if w["alive"])
    now: datetime = overview["now"]
    return (f"taskito at {now:%Y-%m-%d %H:%M:%S %Z} - {alive} live worker"
            f"{'' if alive == 1 else 's'}, {overview['dead_letters']} dead letter"
            f"{'' if overview['dead_letters'] == 1 else 's'}; runs over the last "
            f"{overview['minutes']} min")


def queue_cells(overview: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for q in overview["queues"]:
        jobs = q["jobs"]
        runs = q["succeeded"] + q["failed"]
        rows.append((q["name"], "paused" if q["paused"] else "active",
                     *(str(jobs[k]) for k in ("pending", "running", "completed", "failed",
                                              "dead", "cancelled")),
                     age(q["oldest_pending_seconds"]), str(runs), str(q["failed"]),
                     str(q["workers"])))
    return rows


def worker_cells(overview: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(w["id"], w["host"], str(w["pid"]), ",".join(w["queues"]), str(w["concurrency"]),
             f"{w['busy']}/{w['concurrency']}",
             f"{age(w['seconds_since_heartbeat'])} ago" + ("" if w["alive"] else " (stale)"))
            for w in overview["workers"]]


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (columns, *rows)]


def as_text(overview: dict[str, Any]) -> str:
    """Plain text: a heading, the queues table and the workers table."""
    lines = [heading(overview), ""]
    lines += _table(QUEUE_COLUMNS, queue_cells(overview)) if overview["queues"] else [
        "No queues yet."]
    lines.append("")
    workers = worker_cells(overview)
    lines += _table(WORKER_COLUMNS, workers) if workers else [
        "No worker is running (none has sent a heartbeat)."]
    return "\n".join(lines) + "\n"


def as_rich(overview: dict[str, Any]) -> Any:
    """The same as rich renderables (needs the `cli` extra)."""
    from rich.console import Group
    from rich.table import Table

    queues = Table(title="Queues", title_justify="left", expand=False)
    for column in QUEUE_COLUMNS:
        queues.add_column(column, justify="left" if column in ("queue", "state") else "right")
    for row in queue_cells(overview):
        style = "yellow" if row[1] == "paused" else None
        queues.add_row(*row, style=style)
    workers = Table(title="Workers", title_justify="left", expand=False)
    for column in WORKER_COLUMNS:
        workers.add_column(column, justify="right" if column in ("pid", "concurrency", "busy")
                           else "left")
    for row, w in zip(worker_cells(overview), overview["workers"], strict=True):
        workers.add_row(*row, style=None if w["alive"] else "dim")
    return Group(heading(overview), queues, workers)
