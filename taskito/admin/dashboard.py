"""The dashboard page inside the admin: counts, the last hour, queues, workers, all from
one Queue.overview() call (the reads the Prometheus scrape and taskito_info make).

The page carries no inline script: the charts are inline SVG drawn here (taskito.admin.charts),
and `taskito/admin/dashboard.js` re-fetches the page every few seconds, so it works under a
strict Content Security Policy."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from taskito.admin.charts import runs_chart
from taskito.conf import taskito_settings
from taskito.queue import Queue
from taskito.states import STATS_KEYS

if TYPE_CHECKING:
    from taskito.admin.jobs import JobAdmin

#: Seconds between refreshes unless `?refresh=N` says otherwise (0 turns it off).
REFRESH_SECONDS = 10
WORKERS_SHOWN = 100


def age(seconds: float) -> str:
    """A short, human age: '42 s', '3 min 5 s', '2 h 7 min', '3 d 4 h'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _local(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    zone = timezone.get_current_timezone()
    return [{**p, "minute": p["minute"].astimezone(zone)} for p in points]


def _rate(failed: int, runs: int) -> float | None:
    return round(100 * failed / runs, 1) if runs else None


def queue_rows(overview: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per queue of the overview (jobs, a switch, a worker, runs, or a registered
    task), each with its runs chart."""
    rows = []
    for q in overview["queues"]:
        wait = q["oldest_pending_seconds"]
        runs = q["succeeded"] + q["failed"]
        rows.append({
            "name": q["name"],
            "stats": q["jobs"],
            "paused": q["paused"],
            "oldest_age": age(wait) if wait is not None else None,
            "workers": q["workers"],
            "runs": runs,
            "failed": q["failed"],
            "failure_rate": _rate(q["failed"], runs),
            "chart": runs_chart(_local(q["throughput"]), width=240, height=40, axis=False,
                                label=_("Runs per minute of queue %(name)s over the last "
                                        "hour, and the failure rate") % {"name": q["name"]}),
        })
    return rows


def last_hour(overview: dict[str, Any]) -> dict[str, Any]:
    timeline = _local(overview["throughput"])
    succeeded = sum(p["succeeded"] for p in timeline)
    failed = sum(p["failed"] for p in timeline)
    runs = succeeded + failed
    return {
        "succeeded": succeeded,
        "failed": failed,
        "runs": runs,
        "per_minute": round(runs / len(timeline), 1),
        "failure_rate": _rate(failed, runs),
        "points": [{"t": p["minute"].strftime("%H:%M"), "ok": p["succeeded"],
                    "failed": p["failed"]} for p in timeline],
        "chart": runs_chart(timeline, width=900, height=180,
                            label=_("Runs per minute over the last hour, succeeded and "
                                    "failed, and the failure rate")),
    }


def stale_after() -> float:
    """Seconds of silence after which the lifeline declares a worker dead."""
    return float(taskito_settings.WORKER_STALE_AFTER)


def worker_rows(overview: dict[str, Any]) -> list[dict[str, Any]]:
    """Workers by last heartbeat, with their busy slots: a worker that exits cleanly
    removes its row, so a stale row is a worker that died (the lifeline rescues its jobs)."""
    return [{**w, "queues": ", ".join(w["queues"]), "stale": not w["alive"],
             "age": age(w["seconds_since_heartbeat"])}
            for w in overview["workers"][:WORKERS_SHOWN]]


#: how the dashboard names a breaker's state
BREAKER_LABELS = {"closed": _lazy("closed"), "open": _lazy("open"),
                  "half_open": _lazy("half-open: one probe runs")}


def breaker_rows(queue: Queue) -> list[dict[str, Any]]:
    """Every task's circuit breaker (one query), open ones first."""
    rows = [{**b, "state_label": BREAKER_LABELS[b["state"]]} for b in queue.circuit_breakers()]
    return sorted(rows, key=lambda b: b["state"] == "closed")


def dashboard_data(queue: Queue, now: datetime) -> dict[str, Any]:
    """Everything the page shows, from one Queue.overview() call (six reads)."""
    overview = queue.overview(minutes=60, now=now)
    totals = overview["jobs"]
    statuses = [{"label": key, "code": int(code), "count": totals[key]}
                for code, key in STATS_KEYS.items()]
    return {"statuses": statuses, "queues": queue_rows(overview), "hour": last_hour(overview),
            "workers": worker_rows(overview), "now": now,
            "dead_letters": overview["dead_letters"], "stale_after": round(stale_after())}


def refresh_seconds(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("refresh", REFRESH_SECONDS))
    except ValueError:
        value = REFRESH_SECONDS
    return 0 if value <= 0 else min(max(value, 1), 3600)


def render_dashboard(model_admin: JobAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    request.current_app = model_admin.admin_site.name
    context = {
        **model_admin.admin_site.each_context(request),
        **dashboard_data(model_admin.queue, timezone.now()),
        "title": _("Taskito dashboard"),
        "opts": model_admin.opts,
        "refresh": refresh_seconds(request),
        "can_switch": request.user.has_perm(f"{model_admin.opts.app_label}.change_queuestate"),
        "breakers": breaker_rows(model_admin.queue),
    }
    return TemplateResponse(request, "taskito/admin/dashboard.html", context)


def switch_queue(model_admin: JobAdmin, request: HttpRequest) -> HttpResponse:
    """POST queue=<name>&op=pause|resume: works for a queue that has no QueueState row."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(f"{model_admin.opts.app_label}.change_queuestate"):
        raise PermissionDenied
    name = request.POST.get("queue", "").strip()
    op = request.POST.get("op")
    if not name or op not in ("pause", "resume"):
        messages.error(request, _("Say which queue to pause or resume."))
    elif op == "pause":
        model_admin.queue.pause(name)
        messages.success(request, _("Queue %(name)s paused: workers take no new jobs from it.")
                         % {"name": name})
    else:
        model_admin.queue.resume(name)
        messages.success(request, _("Queue %(name)s resumed.") % {"name": name})
    return HttpResponseRedirect(model_admin.dashboard_url())
