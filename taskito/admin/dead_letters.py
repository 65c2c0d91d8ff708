"""The dead-letter admin: why jobs died, and retry or delete them through the Queue."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from taskito.admin.common import (
    EVERYWHERE,
    QueueFilter,
    Tally,
    TaskitoAdmin,
    TaskNameFilter,
    job_link,
    job_url,
    limited,
    phrase,
    pre,
    pretty_json,
)
from taskito.exceptions import JobNotFound
from taskito.ids import as_uuid
from taskito.models import DeadLetter

#: Rows the delete confirmation page lists by name.
CONFIRM_LIST = 50


class DeadLetterAdmin(TaskitoAdmin):
    """Dead letters, newest first; read-only except for the Queue's retry and delete."""

    list_display = ("task_name", "queue", "short_error", "retry_count", "failed_at",
                    "original_job")
    list_filter = (QueueFilter, TaskNameFilter)
    search_fields = ("task_name",)  # shows the search box; get_search_results does the work
    search_help_text = _("A dead letter id, the original job's id, or part of a task name.")
    ordering = ("-failed_at", "-id")
    sortable_by = ("failed_at",)
    list_defer = ("args", "kwargs", "metadata")
    actions = ["retry_dead_letters", "delete_dead_letters"]
    readonly_fields = ("id", "original_job", "task_name", "queue", "priority", "retry_count",
                       "max_retries", "timeout_ms", "failed_at", "arguments",
                       "keyword_arguments", "error_display", "metadata_display")
    fields = readonly_fields

    @admin.display(description=_("error"))
    def short_error(self, obj: DeadLetter) -> str:
        first_line = (obj.error or "").strip().splitlines()[:1]
        return Truncator(first_line[0] if first_line else "-").chars(120)

    @admin.display(description=_("original job"))
    def original_job(self, obj: DeadLetter) -> SafeString:
        return job_link(self, obj.original_job_id)

    @admin.display(description=_("args"))
    def arguments(self, obj: DeadLetter) -> SafeString | str:
        return pretty_json(obj.args)

    @admin.display(description=_("kwargs"))
    def keyword_arguments(self, obj: DeadLetter) -> SafeString | str:
        return pretty_json(obj.kwargs)

    @admin.display(description=_("error"))
    def error_display(self, obj: DeadLetter) -> SafeString | str:
        return pre(obj.error)

    @admin.display(description=_("metadata"))
    def metadata_display(self, obj: DeadLetter) -> SafeString | str:
        return pretty_json(obj.metadata)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        some_id = as_uuid(term)
        if some_id is not None:
            return queryset.filter(Q(id=some_id) | Q(original_job_id=some_id)), False
        return queryset.filter(task_name__icontains=term), False

    # -- permissions: read-only, except the Queue's own verbs -----------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.user_can(request, "delete")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "change")

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        """The page's own Delete button, through the Queue like everything else."""
        self.queue.delete_dead(obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for dead_id in queryset.values_list("id", flat=True):
            self.queue.delete_dead(dead_id)

    # -- actions ---------------------------------------------------------------------------
    @admin.action(description=_("Retry selected dead letters"), permissions=["retry"],
                  **EVERYWHERE)
    def retry_dead_letters(self, request: HttpRequest,
                           queryset: QuerySet) -> HttpResponse | None:
        """Each dead letter is enqueued again as a new job and leaves the dead letters."""
        tally = Tally(retried=phrase("%(count)d dead letter retried",
                                     "%(count)d dead letters retried"))
        new_ids = []
        for dead_id in limited(queryset.values_list("id", flat=True), tally):
            try:
                new_ids.append(self.queue.retry_dead(dead_id))
            except JobNotFound:
                tally.skip(_("already retried or deleted"))
            else:
                tally.add("retried")
        tally.report(self, request)
        match = request.resolver_match
        if match and str(match.url_name).endswith("_change") and len(new_ids) == 1:
            # Run from the dead letter's own page, which is gone now: show the new job.
            return HttpResponseRedirect(job_url(self, new_ids[0]))
        return None

    @admin.action(description=_("Delete selected dead letters"), permissions=["delete"])
    def delete_dead_letters(self, request: HttpRequest,
                            queryset: QuerySet) -> HttpResponse | None:
        """Ask first (a deleted dead letter cannot come back), then delete through the Queue."""
        if request.POST.get("post") != "yes":
            return self._confirm_delete(request, queryset)
        tally = Tally(deleted=phrase("%(count)d dead letter deleted",
                                     "%(count)d dead letters deleted"))
        for dead_id in limited(queryset.values_list("id", flat=True), tally):
            if self.queue.delete_dead(dead_id):
                tally.add("deleted")
            else:
                tally.skip(_("already retried or deleted"))
        tally.report(self, request)
        return None

    def _confirm_delete(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse:
        shown = list(queryset.only("id", "task_name", "queue", "failed_at")[:CONFIRM_LIST + 1])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Delete dead letters?"),
            "opts": self.opts,
            "rows": shown[:CONFIRM_LIST],
            "more": len(shown) > CONFIRM_LIST,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "taskito/admin/confirm_delete_dead_letters.html",
                                context)
