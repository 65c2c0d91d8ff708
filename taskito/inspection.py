"""Read-only questions to Queue: counts, jobs, errors, logs, metrics, dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Max, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from taskito import overview as overview_rows
from taskito.base import QueueBase
from taskito.conf import taskito_settings
from taskito.ids import as_uuid
from taskito.presenters import dead_letter_dict, error_dict, log_dict
from taskito.registry import registry
from taskito.result import FIELDS, JobResult
from taskito.states import STATS_KEYS, BreakerState, JobStatus


def _empty_stats() -> dict[str, int]:
    return dict.fromkeys(STATS_KEYS.values(), 0)


def _page(limit: Any, offset: Any, max_limit: int = 1000) -> tuple[int, int]:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {value!r}")
    if not 1 <= limit <= max_limit:
        raise ValueError(f"limit must be from 1 to {max_limit}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, not {offset}")
    return limit, offset


class InspectionMixin(QueueBase):
    """Everything that reads without changing anything."""

    def counts(self, queue: str | None = None) -> dict[tuple[str, int], int]:
        """{(queue, status): jobs}. Two index-only queries: pending rows through the partial
        "ready" index, the rest through the partial index on finished and running rows."""
        jobs = self.job_model.objects.using(self.using).in_queue(queue).order_by()
        counts: dict[tuple[str, int], int] = {}
        pending = jobs.filter(status=JobStatus.PENDING).values_list("queue").annotate(
            n=Count("*"))
        for name, n in pending:
            counts[(name, JobStatus.PENDING)] = n
        rest = jobs.exclude(status=JobStatus.PENDING).values_list("queue", "status").annotate(
            n=Count("*"))
        for name, status, n in rest:
            counts[(name, status)] = n
        return counts

    def stats(self, queue: str | None = None) -> dict[str, int]:
        """Job counts by status: pending, running, completed, failed, dead, cancelled."""
        stats = _empty_stats()
        for (_, status), n in self.counts(queue).items():
            stats[STATS_KEYS[JobStatus(status)]] += n
        return stats

    def stats_by_queue(self) -> dict[str, dict[str, int]]:
        """{queue: stats} for every queue that has jobs."""
        result: dict[str, dict[str, int]] = {}
        for (name, status), n in sorted(self.counts().items()):
            result.setdefault(name, _empty_stats())[STATS_KEYS[JobStatus(status)]] = n
        return result

    def fetch_job_row(self, job_id: Any) -> dict[str, Any] | None:
        jid = as_uuid(job_id)
        if jid is None:
            return None
        return self.job_model.objects.using(self.using).filter(id=jid).values(*FIELDS).first()

    def job_progress(self, job_ids: Any, partial: bool = False) -> dict[uuid.UUID, tuple[Any, ...]]:
        """{id: (status code, progress)} of the given jobs in one query, with the partial
        result's JSON text (or None) as a third item when `partial`; unknown ids are left
        out. What progress streams poll."""
        ids = [jid for jid in map(as_uuid, job_ids) if jid is not None]
        if not ids:
            return {}
        fields = ("id", "status", "progress", "partial_result")[:4 if partial else 3]
        rows = self.job_model.objects.using(self.using).filter(id__in=ids).values_list(*fields)
        return {row[0]: tuple(row[1:]) for row in rows}

    def get_job(self, job_id: Any) -> JobResult | None:
        """The job's handle, or None when no job has that id."""
        row = self.fetch_job_row(job_id)
        return None if row is None else self.handle(row["id"], row)

    def list_jobs(self, status: str | int | None = None, queue: str | None = None,
                  task_name: str | None = None, limit: int = 50,
                  offset: int = 0) -> list[JobResult]:
        """Jobs, newest first, filtered by status name, queue and task name."""
        limit, offset = _page(limit, offset)
        qs = self.job_model.objects.using(self.using).order_by("-created_at", "-id")
        if status is not None:
            qs = qs.filter(status=JobStatus.parse(status))
        if queue is not None:
            qs = qs.filter(queue=queue)
        if task_name is not None:
            qs = qs.filter(task_name=task_name)
        return [self.handle(row["id"], row)
                for row in qs.values(*FIELDS)[offset:offset + limit]]

    def job_errors(self, job_id: Any) -> list[dict[str, Any]]:
        """One dict per failed attempt, oldest first."""
        jid = as_uuid(job_id)
        rows = (self.error_model.objects.using(self.using).filter(job_id=jid)
                .order_by("attempt", "id").values()) if jid else []
        return [error_dict(r) for r in rows]

    def task_logs(self, job_id: Any) -> list[dict[str, Any]]:
        jid = as_uuid(job_id)
        rows = (self.log_model.objects.using(self.using).filter(job_id=jid)
                .order_by("logged_at", "id").values()) if jid else []
        return [log_dict(r) for r in rows]

    def metrics(self, task_name: str | None = None,
                since: float = 3600) -> dict[str, dict[str, Any]]:
        """Per task over the last `since` seconds: runs, successes, failures, wall times."""
        cutoff = timezone.now() - timedelta(seconds=since)
        qs = self.metric_model.objects.using(self.using).filter(recorded_at__gte=cutoff)
        if task_name is not None:
            qs = qs.filter(task_name=task_name)
        rows = (qs.order_by().values("task_name").annotate(
            count=Count("id"), succeeded=Count("id", filter=Q(succeeded=True)),
            avg_ms=Avg("wall_time_ms"), min_ms=Min("wall_time_ms"), max_ms=Max("wall_time_ms")))
        return {
            r["task_name"]: {"count": r["count"], "succeeded": r["succeeded"],
                             "failed": r["count"] - r["succeeded"], "avg_ms": r["avg_ms"],
                             "min_ms": r["min_ms"], "max_ms": r["max_ms"]}
            for r in rows
        }

    def dead_letters(self, limit: int = 10, offset: int = 0) -> list[dict[str, Any]]:
        """Dead letters, newest first."""
        limit, offset = _page(limit, offset)
        rows = (self.dead_letter_model.objects.using(self.using)
                .order_by("-failed_at", "-id").values()[offset:offset + limit])
        return [dead_letter_dict(r) for r in rows]

    def job_dependencies(self, job_id: Any) -> list[uuid.UUID]:
        jid = as_uuid(job_id)
        return list(self.dependency_model.objects.using(self.using).filter(job_id=jid)
                    .values_list("depends_on_id", flat=True)) if jid else []

    def job_dependents(self, job_id: Any) -> list[uuid.UUID]:
        jid = as_uuid(job_id)
        return list(self.dependency_model.objects.using(self.using).filter(depends_on_id=jid)
                    .values_list("job_id", flat=True)) if jid else []

    def oldest_pending(self, now: datetime | None = None) -> dict[str, datetime]:
        """{queue: due time of its longest-waiting ready job} (pending and due by `now`);
        delayed jobs that are not due yet are not waiting, so they do not count."""
        rows = (self.job_model.objects.using(self.using).ready(now or timezone.now())
                .order_by().values_list("queue").annotate(oldest=Min("scheduled_at")))
        return dict(rows)

    def throughput(self, minutes: int = 60,
                   now: datetime | None = None) -> list[dict[str, Any]]:
        """Finished runs per minute over the last `minutes` minutes, oldest first, one dict
        per minute (also the empty ones): {"minute", "succeeded", "failed"}."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise ValueError(f"minutes must be an int from 1 to 1440, not {minutes!r}")
        end = (now or timezone.now()).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=minutes)
        rows = (self.metric_model.objects.using(self.using)
                .filter(recorded_at__gte=start, recorded_at__lt=end).order_by()
                .values(minute=TruncMinute("recorded_at"))
                .annotate(n=Count("id"), ok=Count("id", filter=Q(succeeded=True))))
        counts = {r["minute"]: (r["ok"], r["n"] - r["ok"]) for r in rows}
        timeline = []
        for i in range(minutes):
            minute = start + timedelta(minutes=i)
            ok, failed = counts.get(minute, (0, 0))
            timeline.append({"minute": minute, "succeeded": ok, "failed": failed})
        return timeline

    def job_dag(self, job_id: Any) -> dict[str, Any]:
        """The dependency graph around a job: every job reachable through depends_on links
        in either direction, as {"nodes": [{id, task_name, status}], "edges": [[from, to]]}
        where an edge means "to depends on from"."""
        root = as_uuid(job_id)
        if root is None:
            return {"nodes": [], "edges": []}
        seen = {root}
        edges: set[tuple[uuid.UUID, uuid.UUID]] = set()
        frontier = [root]
        links = self.dependency_model.objects.using(self.using)
        while frontier:
            rows = list(links.filter(job_id__in=frontier).values_list("depends_on_id", "job_id"))
            rows += list(links.filter(depends_on_id__in=frontier)
                         .values_list("depends_on_id", "job_id"))
            edges.update(rows)
            frontier = [n for pair in rows for n in pair if n not in seen]
            seen.update(frontier)
        nodes = (self.job_model.objects.using(self.using).filter(id__in=seen)
                 .values("id", "task_name", "status"))
        return {
            "nodes": [{"id": str(n["id"]), "task_name": n["task_name"],
                       "status": JobStatus(n["status"]).label} for n in nodes],
            "edges": sorted([str(a), str(b)] for a, b in edges),
        }

    def workers(self) -> list[dict[str, Any]]:
        """Workers by last heartbeat, newest first: {id, host, pid, queues, concurrency, busy,
        started_at, last_heartbeat}; `busy` counts the running jobs each holds (one grouped
        query for all of them). A clean exit removes the row, so a stale one is a dead
        worker whose jobs the lifeline rescues."""
        from taskito.models import WorkerHeartbeat

        rows = list(WorkerHeartbeat.objects.using(self.using).order_by("-last_seen"))
        busy = dict(self.job_model.objects.using(self.using).order_by()
                    .filter(status=JobStatus.RUNNING, worker_id__in=[r.worker_id for r in rows])
                    .values_list("worker_id").annotate(n=Count("*"))) if rows else {}
        return [{"id": r.worker_id, "host": r.hostname, "pid": r.pid,
                 "queues": [name for name in r.queues.split(",") if name],
                 "concurrency": r.concurrency, "busy": busy.get(r.worker_id, 0),
                 "started_at": r.started_at, "last_heartbeat": r.last_seen} for r in rows]

    def overview(self, minutes: int = 60, now: datetime | None = None) -> dict[str, Any]:
        """The operator's picture in six reads, whatever the number of jobs, queues and
        workers: per queue its job counts, oldest ready job's wait, paused switch, live
        workers and runs per minute over the last `minutes` (1..1440); every worker with its
        busy slots and liveness; the dead-letter total. docs/api.md shows the shape."""
        at = now or timezone.now()
        start, end = overview_rows.window(minutes, at)
        rows = self.dialect.overview(at, start, end)
        return overview_rows.build(
            rows, now=at, minutes=minutes,
            stale_after=float(taskito_settings.WORKER_STALE_AFTER),
            known=overview_rows.registered_queues(self.default_queue))
    def circuit_breakers(self) -> list[dict[str, Any]]:
        """The circuit breakers of the tasks that have one (also those that never failed),
        by task name: {task_name, state ("closed", "open", "half_open"), failure_count,
        opened_at}. `failure_count` is the failures in the current window of a closed
        breaker (0 once the window ran out), and what opened an open one."""
        from taskito.models import CircuitBreaker

        found = CircuitBreaker.objects.using(self.using).values(
            "task_name", "state", "failure_count", "window_start", "opened_at")
        rows: dict[str, dict[str, Any]] = {r["task_name"]: dict(r) for r in found}
        now = timezone.now()
        breakers = []
        for name in sorted(set(rows) | registry.breakers):
            row = rows.get(name) or {"state": BreakerState.CLOSED, "failure_count": 0,
                                     "window_start": None, "opened_at": None}
            count = row["failure_count"]
            spec = registry.find(name)
            window = spec.circuit_breaker.window if spec and spec.circuit_breaker else None
            if (row["state"] == BreakerState.CLOSED and window is not None
                    and (row["window_start"] is None
                         or row["window_start"] <= now - timedelta(seconds=window))):
                count = 0
            breakers.append({"task_name": name, "state": BreakerState(row["state"]).label,
                             "failure_count": count, "opened_at": row["opened_at"]})
        return breakers
