"""The Job admin: a fast list, a read-only page with the job's history, cancel and replay."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from taskito.admin.common import (
    EVERYWHERE,
    QueueFilter,
    ReadOnlyAdmin,
    Tally,
    TaskNameFilter,
    limited,
    phrase,
    pre,
    pretty_json,
    short_time,
)
from taskito.admin.dashboard import render_dashboard, switch_queue
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid
from taskito.models import Job, JobDependency, JobError, ReplayHistory, TaskLog
from taskito.states import ACTIVE, REQUEUE_FROM, TERMINAL, JobStatus

#: Rows a panel of the job page shows at most (the rest is one click away).
PANEL_LIMIT = 100


def status_badge(status: int) -> SafeString:
    label = JobStatus(status).label
    return format_html('<span class="taskito-status taskito-status-{}">{}</span>', label, label)


class JobAdmin(ReadOnlyAdmin):
    """Jobs, newest first: UUIDv7 ids sort by creation time, so "newest first" is a walk
    down the primary key instead of a sort of the whole table."""

    list_display = ("short_id", "status_badge", "queue", "task_name", "priority", "progress_bar",
                    "attempts", "created", "started", "finished")
    list_filter = (("status", admin.ChoicesFieldListFilter), QueueFilter, TaskNameFilter)
    search_fields = ("task_name",)  # shows the search box; get_search_results does the work
    search_help_text = _("A job id, part of a task name, or a unique key.")
    ordering = ("-id",)
    sortable_by = ("created",)
    list_defer = ("args", "kwargs", "result", "partial_result", "error", "metadata",
                  "claim_token")
    actions = ["cancel_jobs", "replay_jobs", "requeue_jobs", "revoke_tasks"]
    readonly_fields = (
        "id", "task_name", "queue", "status_badge", "priority", "progress_bar", "attempts",
        "retry_count", "max_retries", "unique_key", "worker_id", "cancel_requested",
        "created_at", "scheduled_at", "started_at", "completed_at", "expires_at",
        "timeout_ms", "soft_timeout_ms", "result_ttl", "arguments", "keyword_arguments",
        "result_display", "partial_result_display", "error_display", "metadata_display",
        "error_history", "logs",
        "dependencies", "replay_history", "workflow",
    )
    fieldsets = (
        (None, {"fields": ("id", "task_name", "queue", "status_badge", "progress_bar",
                           "priority", ("attempts", "retry_count", "max_retries"),
                           "unique_key", "worker_id", "cancel_requested")}),
        (_("Call and outcome"), {"fields": ("arguments", "keyword_arguments", "result_display",
                                            "partial_result_display", "error_display",
                                            "metadata_display")}),
        (_("Timing"), {"fields": (("created_at", "scheduled_at"),
                                  ("started_at", "completed_at"), "expires_at",
                                  ("timeout_ms", "soft_timeout_ms", "result_ttl"))}),
        (_("Error history"), {"fields": ("error_history",)}),
        (_("Logs"), {"fields": ("logs",)}),
        (_("Dependencies"), {"fields": ("dependencies",)}),
        (_("Workflow"), {"fields": ("workflow",)}),
        (_("Replay history"), {"fields": ("replay_history",)}),
    )

    # -- list ------------------------------------------------------------------------------
    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Job) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description=_("progress"))
    def progress_bar(self, obj: Job) -> SafeString:
        return format_html('<progress class="taskito-progress" value="{}" max="100">{}%'
                           '</progress> <span class="taskito-muted">{}%</span>',
                           obj.progress, obj.progress, obj.progress)

    @admin.display(description=_("id"))
    def short_id(self, obj: Job) -> SafeString:
        # The tail is the random part of a UUIDv7 (its head is the creation time).
        return format_html('<span title="{}">…{}</span>', obj.id, str(obj.id)[-12:])

    @admin.display(description=_("created"), ordering="id")
    def created(self, obj: Job) -> SafeString | str:
        return short_time(obj.created_at)

    @admin.display(description=_("started"))
    def started(self, obj: Job) -> SafeString | str:
        return short_time(obj.started_at)

    @admin.display(description=_("finished"))
    def finished(self, obj: Job) -> SafeString | str:
        return short_time(obj.completed_at)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        job_id = as_uuid(term)
        if job_id is not None:
            return queryset.filter(id=job_id), False
        return queryset.filter(Q(task_name__icontains=term) | Q(unique_key=term)), False

    # -- actions ---------------------------------------------------------------------------
    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "change")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "add")

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "change")  # a state change of jobs, as cancel is

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "change")

    @admin.action(description=_("Cancel selected jobs"), permissions=["cancel"],
                  **EVERYWHERE)
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Pending jobs are cancelled (with their pending dependents); running jobs get a
        cancel request that `current_job.check_cancelled()` raises on."""
        tally = Tally(
            cancelled=phrase("%(count)d job cancelled", "%(count)d jobs cancelled"),
            requested=phrase("cancel requested for %(count)d running job",
                             "cancel requested for %(count)d running jobs"))
        rows = limited(queryset.values_list("id", "status", "cancel_requested"), tally)
        for job_id, status, requested in rows:
            if status == JobStatus.PENDING and self.queue.cancel_job(job_id):
                tally.add("cancelled")
            elif status in ACTIVE and requested:
                tally.skip(_("cancel already requested"))
            elif status in ACTIVE and self.queue.cancel_running_job(job_id):
                tally.add("requested")  # also a pending job that a worker claimed meanwhile
            else:
                tally.skip(_("already finished"))
        tally.report(self, request)

    @admin.action(description=_("Replay selected jobs"), permissions=["replay"],
                  **EVERYWHERE)
    def replay_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Finished jobs run again as new jobs; ReplayHistory links each pair."""
        tally = Tally(replayed=phrase("%(count)d job replayed", "%(count)d jobs replayed"))
        for job_id, status in limited(queryset.values_list("id", "status"), tally):
            if status not in TERMINAL:
                tally.skip(_("not finished yet"))
                continue
            try:
                self.queue.replay(job_id)
            except JobNotFound:
                tally.skip(_("no longer exists"))
            else:
                tally.add("replayed")
        tally.report(self, request)

    @admin.action(description=_("Requeue selected jobs"), permissions=["requeue"],
                  **EVERYWHERE)
    def requeue_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Failed, dead and cancelled jobs go back to pending as the same rows, their retry
        count reset (`Queue.requeue_job`)."""
        tally = Tally(requeued=phrase("%(count)d job requeued", "%(count)d jobs requeued"))
        for job_id, status in limited(queryset.values_list("id", "status"), tally):
            if status not in REQUEUE_FROM:
                tally.skip(_("not failed, dead or cancelled"))
            elif self.queue.requeue_job(job_id):
                tally.add("requeued")
            else:
                tally.skip(_("a workflow step, waiting on a dependency, or its unique key "
                             "taken"))
        tally.report(self, request)

    @admin.action(description=_("Revoke the tasks of selected jobs"), permissions=["revoke"],
                  **EVERYWHERE)
    def revoke_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Every pending job of each selected job's task is cancelled (`Queue.revoke_task`),
        selected or not; running jobs finish."""
        tally = Tally(revoked=phrase("%(count)d task revoked", "%(count)d tasks revoked"))
        names = limited(queryset.order_by().values_list("task_name", flat=True).distinct(),
                        tally)
        cancelled = 0
        for name in sorted(names):
            cancelled += self.queue.revoke_task(name)
            tally.add("revoked")
        tally.phrases["revoked"] = lambda n: _revoked(n, cancelled)
        tally.report(self, request)

    # -- the job page ----------------------------------------------------------------------
    @admin.display(description=_("args"))
    def arguments(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.args)

    @admin.display(description=_("kwargs"))
    def keyword_arguments(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.kwargs)

    @admin.display(description=_("result"))
    def result_display(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.result)

    @admin.display(description=_("partial result"))
    def partial_result_display(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.partial_result)

    @admin.display(description=_("error"))
    def error_display(self, obj: Job) -> SafeString | str:
        return pre(obj.error)

    @admin.display(description=_("metadata"))
    def metadata_display(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.metadata)

    def _panel(self, template: str, **context: Any) -> SafeString:
        context.update(site=self.admin_site.name, limit=PANEL_LIMIT)
        return mark_safe(render_to_string(f"taskito/admin/panels/{template}", context))

    @admin.display(description=_("attempts that failed"))
    def error_history(self, obj: Job) -> SafeString:
        rows = list(JobError.objects.using(self.queue.using).filter(job_id=obj.pk)
                    .order_by("attempt", "id")[:PANEL_LIMIT + 1])
        return self._panel("errors.html", rows=rows[:PANEL_LIMIT],
                           more=len(rows) > PANEL_LIMIT, job=obj)

    @admin.display(description=_("latest log lines"))
    def logs(self, obj: Job) -> SafeString:
        rows = list(TaskLog.objects.using(self.queue.using).filter(job_id=obj.pk)
                    .order_by("-logged_at", "-id")[:PANEL_LIMIT + 1])
        return self._panel("logs.html", rows=rows[:PANEL_LIMIT][::-1],
                           more=len(rows) > PANEL_LIMIT, job=obj)

    @admin.display(description=_("waits for / waited on by"))
    def dependencies(self, obj: Job) -> SafeString:
        links = JobDependency.objects.using(self.queue.using)
        upstream = (links.filter(job_id=obj.pk).order_by("id")
                    .values_list("depends_on_id", "depends_on__task_name",
                                 "depends_on__status")[:PANEL_LIMIT])
        downstream = (links.filter(depends_on_id=obj.pk).order_by("id")
                      .values_list("job_id", "job__task_name", "job__status")[:PANEL_LIMIT])
        return self._panel("dependencies.html", upstream=_jobs(upstream),
                           downstream=_jobs(downstream))

    @admin.display(description=_("workflow and its steps"))
    def workflow(self, obj: Job) -> SafeString:
        flow = None if obj.workflow_id is None else self.queue.get_workflow(obj.workflow_id)
        if flow is None:
            return self._panel("workflow.html", flow=None)
        jobs = flow.jobs  # in step order, one per step
        steps = [{"id": j.id, "task_name": j.task_name, "step": index, "current": j.id == obj.pk,
                  "status": status_badge(JobStatus.parse(j.status))}
                 for index, j in enumerate(jobs[:PANEL_LIMIT])]
        return self._panel("workflow.html", flow=flow, status=flow.status, steps=steps,
                           more=len(jobs) > PANEL_LIMIT)

    @admin.display(description=_("replays"))
    def replay_history(self, obj: Job) -> SafeString:
        history = ReplayHistory.objects.using(self.queue.using)
        replays = (history.filter(original_job_id=obj.pk).order_by("-replayed_at")
                   .values_list("replay_job_id", "replay_job__task_name",
                                "replay_job__status", "replayed_at")[:PANEL_LIMIT])
        origin = (history.filter(replay_job_id=obj.pk)
                  .values_list("original_job_id", "original_job__task_name",
                               "original_job__status", "replayed_at")[:1])
        return self._panel("replays.html", replays=_jobs(replays), origin=_jobs(origin))

    # -- the dashboard lives under the jobs' URLs ------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="taskito_dashboard"),
            path("dashboard/queue/", wrap(self.queue_switch_view), name="taskito_queue_switch"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return render_dashboard(self, request)

    def queue_switch_view(self, request: HttpRequest) -> HttpResponse:
        return switch_queue(self, request)

    def dashboard_url(self) -> str:
        return reverse(f"{self.admin_site.name}:taskito_dashboard")


def _revoked(tasks: int, cancelled: int) -> str:
    """'2 tasks revoked (5 pending jobs cancelled)'."""
    return phrase("%(count)d task revoked", "%(count)d tasks revoked")(tasks) + " (" + phrase(
        "%(count)d pending job cancelled", "%(count)d pending jobs cancelled")(cancelled) + ")"


def _jobs(rows: Any) -> list[dict[str, Any]]:
    """(id, task, status[, when]) tuples as dicts a panel template can show."""
    return [{"id": r[0], "task_name": r[1], "status": status_badge(r[2]),
             "when": r[3] if len(r) > 3 else None} for r in rows]
