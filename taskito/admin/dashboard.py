"""The dashboard page inside the admin: counts, the last hour, queues, workers.

The page carries no inline script: `taskito/admin/dashboard.js` draws the chart from a JSON
data block and re-fetches the page every few seconds, so it works under a strict Content
Security Policy."""

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

from taskito.admin.common import known_queues
from taskito.conf import taskito_settings
from taskito.models import WorkerHeartbeat
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


def queue_rows(queue: Queue, now: datetime) -> list[dict[str, Any]]:
    """One row per queue that has jobs, a switch, or a registered task."""
    by_queue = queue.stats_by_queue()
    paused = set(queue.paused_queues())
    oldest = queue.oldest_pending(now)
    rows = []
    for name in sorted(set(by_queue) | known_queues(queue)):
        due = oldest.get(name)
        rows.append({
            "name": name,
            "stats": by_queue.get(name, dict.fromkeys(STATS_KEYS.values(), 0)),
            "paused": name in paused,
            "oldest_due": due,
            "oldest_age": age((now - due).total_seconds()) if due else None,
        })
    return rows


def last_hour(queue: Queue, now: datetime) -> dict[str, Any]:
    timeline = queue.throughput(60, now)
    succeeded = sum(p["succeeded"] for p in timeline)
    failed = sum(p["failed"] for p in timeline)
    runs = succeeded + failed
    zone = timezone.get_current_timezone()
    return {
        "succeeded": succeeded,
        "failed": failed,
        "runs": runs,
        "per_minute": round(runs / len(timeline), 1),
        "failure_rate": round(100 * failed / runs, 1) if runs else None,
        "points": [{"t": p["minute"].astimezone(zone).strftime("%H:%M"),
                    "ok": p["succeeded"], "failed": p["failed"]} for p in timeline],
    }


def stale_after() -> float:
    """Seconds of silence after which the lifeline declares a worker dead."""
    return float(taskito_settings.WORKER_STALE_AFTER)


def worker_rows(queue: Queue, now: datetime) -> list[dict[str, Any]]:
    """Workers by last heartbeat: a worker that exits cleanly removes its row, so a stale
    row is a worker that died (its running jobs are rescued by the lifeline)."""
    rows = (WorkerHeartbeat.objects.using(queue.using).order_by("-last_seen")
            [:WORKERS_SHOWN])
    limit = stale_after()
    return [{"worker": w, "age": age((now - w.last_seen).total_seconds()),
             "stale": (now - w.last_seen).total_seconds() > limit} for w in rows]


#: how the dashboard names a breaker's state
BREAKER_LABELS = {"closed": _lazy("closed"), "open": _lazy("open"),
                  "half_open": _lazy("half-open: one probe runs")}


def breaker_rows(queue: Queue) -> list[dict[str, Any]]:
    """Every task's circuit breaker (one query), open ones first."""
    rows = [{**b, "state_label": BREAKER_LABELS[b["state"]]} for b in queue.circuit_breakers()]
    return sorted(rows, key=lambda b: b["state"] == "closed")


def dashboard_data(queue: Queue, now: datetime) -> dict[str, Any]:
    queues = queue_rows(queue, now)
    totals = dict.fromkeys(STATS_KEYS.values(), 0)
    for row in queues:
        for key, n in row["stats"].items():
            totals[key] += n
    statuses = [{"label": key, "code": int(code), "count": totals[key]}
                for code, key in STATS_KEYS.items()]
    return {"statuses": statuses, "queues": queues, "hour": last_hour(queue, now),
            "workers": worker_rows(queue, now), "now": now,
            "stale_after": round(stale_after())}


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
