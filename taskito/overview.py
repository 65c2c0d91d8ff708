"""The operator's picture of the queue, from the rows of `Dialect.overview` (pure: no SQL,
time passed in). `Queue.overview()` returns it; the Prometheus view, `manage.py
taskito_info` and the admin dashboard all read this one dict."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from taskito.db.base import OverviewRows
from taskito.registry import registry
from taskito.states import STATS_KEYS, JobStatus

#: the widest window overview() looks back over, in minutes (a day)
MAX_MINUTES = 1440
#: a worker row's `queues` when it takes jobs from every queue
EVERY_QUEUE = "*"


def registered_queues(default: str) -> set[str]:
    """The default queue and those of the tasks this process registered (no query)."""
    names = {spec.queue for name in registry.names()
             if (spec := registry.find(name)) is not None and spec.queue}
    names.add(default)
    return names


def window(minutes: Any, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the last `minutes` whole minutes, the current one included."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            1 <= minutes <= MAX_MINUTES):
        raise ValueError(f"minutes must be an int from 1 to {MAX_MINUTES}, not {minutes!r}")
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(minutes=minutes), end


def _epoch_minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


def _worker(row: tuple[Any, ...], now: datetime, stale_after: float) -> dict[str, Any]:
    worker_id, host, pid, queues, concurrency, started_at, last_seen, busy = row
    silent = max(0.0, (now - last_seen).total_seconds())
    return {"id": worker_id, "host": host, "pid": pid,
            "queues": [name for name in queues.split(",") if name],
            "concurrency": concurrency, "busy": busy, "started_at": started_at,
            "last_heartbeat": last_seen, "seconds_since_heartbeat": round(silent, 3),
            "alive": silent <= stale_after}


def _timeline(points: dict[int, tuple[int, int]], first: int,
              minutes: int) -> list[dict[str, Any]]:
    timeline = []
    for minute in range(first, first + minutes):
        runs, ok = points.get(minute, (0, 0))
        timeline.append({"minute": datetime.fromtimestamp(minute * 60, UTC),
                         "succeeded": ok, "failed": runs - ok})
    return timeline


def build(rows: OverviewRows, *, now: datetime, minutes: int, stale_after: float,
          known: Iterable[str] = ()) -> dict[str, Any]:
    """The overview dict (docs/api.md, "Queue.overview"), one entry per queue that has
    jobs, a switch, a worker that names it, runs in the window, or is in `known`."""
    start, _ = window(minutes, now)
    first = _epoch_minute(start)
    jobs: dict[str, dict[str, int]] = {}
    oldest: dict[str, datetime] = {}
    for name, n, due in rows.pending:
        jobs.setdefault(name, {})[STATS_KEYS[JobStatus.PENDING]] = n
        if due is not None:
            oldest[name] = due
    for name, status, n in rows.statuses:
        key = STATS_KEYS[JobStatus(status)]
        counts = jobs.setdefault(name, {})
        counts[key] = counts.get(key, 0) + n
    paused = dict(rows.queue_states)
    workers = [_worker(r, now, stale_after) for r in rows.workers]
    points: dict[str, dict[int, tuple[int, int]]] = {}
    for name, minute, n, ok in rows.throughput:
        points.setdefault(name, {})[minute] = (n, ok)
    named = {q for w in workers for q in w["queues"] if q != EVERY_QUEUE}
    names = sorted(set(jobs) | set(paused) | set(points) | named | set(known))
    queues = []
    for name in names:
        serving = [w for w in workers if w["alive"]
                   and (EVERY_QUEUE in w["queues"] or not w["queues"] or name in w["queues"])]
        timeline = _timeline(points.get(name, {}), first, minutes)
        due = oldest.get(name)
        queues.append({
            "name": name,
            "jobs": {key: jobs.get(name, {}).get(key, 0) for key in STATS_KEYS.values()},
            "oldest_pending_seconds": (round(max(0.0, (now - due).total_seconds()), 3)
                                       if due is not None else None),
            "paused": paused.get(name, False),
            "workers": len(serving),
            "succeeded": sum(p["succeeded"] for p in timeline),
            "failed": sum(p["failed"] for p in timeline),
            "throughput": timeline,
        })
    overall: dict[int, tuple[int, int]] = {}
    for by_minute in points.values():
        for minute, (n, ok) in by_minute.items():
            runs, good = overall.get(minute, (0, 0))
            overall[minute] = (runs + n, good + ok)
    return {"now": now, "minutes": minutes, "stale_after": stale_after,
            "jobs": {key: sum(q["jobs"][key] for q in queues) for key in STATS_KEYS.values()},
            "dead_letters": rows.dead_letters,
            "throughput": _timeline(overall, first, minutes),
            "queues": queues, "workers": workers}
