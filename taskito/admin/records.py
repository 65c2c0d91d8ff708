"""Read-only admins for what jobs leave behind: failed attempts, log lines, run metrics."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from taskito.admin.common import (
    QueueFilter,
    ReadOnlyAdmin,
    TaskNameFilter,
    has_nul,
    job_link,
    pre,
    pretty_json,
)
from taskito.ids import as_uuid
from taskito.models import JobError, TaskLog, TaskMetric

LEVELS = ("debug", "info", "warning", "error", "critical")


class JobFilter(admin.SimpleListFilter):
    """`?job=<id>`: the rows of one job (the job page links here); hidden otherwise."""

    title = _("job")
    parameter_name = "job"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin
                ) -> list[tuple[str, str]]:
        value = self.value()
        return [(str(value), str(value))] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        job_id = as_uuid(self.value())
        return queryset.filter(job_id=job_id) if job_id else queryset.none()


class LevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin
                ) -> list[tuple[str, str]]:
        return [(level, level) for level in LEVELS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if has_nul(value):  # no row holds one, and PostgreSQL refuses to compare it
            return queryset.none()
        return queryset.filter(level=value)


class _JobRecordAdmin(ReadOnlyAdmin):
    """Rows that belong to a job: newest first by primary key, searchable by job id."""

    ordering = ("-id",)
    sortable_by = ()
    #: the columns a search term that is not a job id looks in (icontains)
    text_search: tuple[str, ...] = ("task_name",)

    @admin.display(description=_("job"))
    def job_link(self, obj: JobError | TaskLog | TaskMetric) -> SafeString:
        return job_link(self, obj.job_id)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        job_id = as_uuid(term)
        if job_id is not None:
            return queryset.filter(job_id=job_id), False
        match = Q()
        for column in self.text_search:
            match |= Q(**{f"{column}__icontains": term})
        return queryset.filter(match), False


class JobErrorAdmin(_JobRecordAdmin):
    list_display = ("failed_at", "job_link", "attempt", "short_error")
    list_filter = (JobFilter,)
    search_fields = ("error",)
    search_help_text = _("A job id, or part of an error message.")
    text_search = ("error",)
    list_defer = ("traceback",)
    fields = ("job_link", "attempt", "failed_at", "error_display", "traceback_display")
    readonly_fields = fields

    @admin.display(description=_("error"))
    def short_error(self, obj: JobError) -> str:
        return Truncator(obj.error.strip().splitlines()[0] if obj.error.strip() else "-"
                         ).chars(120)

    @admin.display(description=_("error"))
    def error_display(self, obj: JobError) -> SafeString | str:
        return pre(obj.error)

    @admin.display(description=_("traceback"))
    def traceback_display(self, obj: JobError) -> SafeString | str:
        return pre(obj.traceback)


class TaskLogAdmin(_JobRecordAdmin):
    list_display = ("logged_at", "level_badge", "task_name", "short_message", "job_link")
    list_filter = (LevelFilter, TaskNameFilter, JobFilter)
    search_fields = ("message",)
    search_help_text = _("A job id, or part of a task name or message.")
    text_search = ("task_name", "message")
    fields = ("job_link", "task_name", "level_badge", "logged_at", "message_display",
              "extra_display")
    readonly_fields = fields

    @admin.display(description=_("level"))
    def level_badge(self, obj: TaskLog) -> SafeString:
        return format_html('<span class="taskito-level taskito-level-{}">{}</span>',
                           obj.level, obj.level)

    @admin.display(description=_("message"))
    def short_message(self, obj: TaskLog) -> str:
        return Truncator(obj.message).chars(160)

    @admin.display(description=_("message"))
    def message_display(self, obj: TaskLog) -> SafeString | str:
        return pre(obj.message)

    @admin.display(description=_("extra"))
    def extra_display(self, obj: TaskLog) -> SafeString | str:
        return pretty_json(obj.extra)


class TaskMetricAdmin(_JobRecordAdmin):
    list_display = ("recorded_at", "task_name", "queue", "succeeded", "wall_time",
                    "job_link")
    list_filter = (("succeeded", admin.BooleanFieldListFilter), TaskNameFilter, QueueFilter,
                   JobFilter)
    search_fields = ("task_name",)
    search_help_text = _("A job id, or part of a task or queue name.")
    text_search = ("task_name", "queue")
    fields = ("job_link", "task_name", "queue", "succeeded", "wall_time", "recorded_at")
    readonly_fields = fields

    @admin.display(description=_("wall time"), ordering="wall_time_ms")
    def wall_time(self, obj: TaskMetric) -> str:
        return f"{obj.wall_time_ms:.1f} ms"
