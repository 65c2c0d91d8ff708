"""Periodic tasks (editable, validated) and queue switches (pause and resume via the Queue)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from taskito.admin.common import ReadOnlyAdmin, Tally, TaskitoAdmin, phrase
from taskito.contrib.tasks_backend.utils import django_task_paths
from taskito.cron import next_fire, next_fires, validate_cron, zone
from taskito.exceptions import ConfigurationError
from taskito.models import PeriodicTask
from taskito.registry import registry
from taskito.serialization import dumps

HOW_IT_RUNS = _(
    "The worker that holds the lifeline lease enqueues each enabled schedule once per due "
    "time. Schedules declared in code with @queue.periodic are written here when a worker "
    "starts: the enabled switch set here is kept, but their other fields are rewritten from "
    "the code then, so change those in the code.")


def next_fire_times(cron: str, tz: str, now: datetime, count: int = 3) -> list[datetime]:
    """The next `count` times `cron` fires after `now`, in time zone `tz` (empty when the
    expression or the zone is not valid)."""
    try:
        return [t.astimezone(zone(tz)) for t in next_fires(cron, now, tz, count)]
    except ConfigurationError:
        return []


class TaskNameInput(forms.TextInput):
    """A text input that suggests the registered task names and the Django `@task` module
    paths found so far (an HTML datalist)."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None,
               renderer: Any = None) -> SafeString:
        list_id = f"{(attrs or {}).get('id', name)}_choices"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        names = sorted({*registry.names(), *(django_task_paths() or ())})
        options = format_html_join("", '<option value="{}">', ((n,) for n in names))
        return html + format_html('<datalist id="{}">{}</datalist>', list_id, options)


def _json_field(initial: str, help_text: Any) -> forms.CharField:
    return forms.CharField(initial=initial, help_text=help_text, required=False,
                           widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}))


class PeriodicTaskForm(forms.ModelForm):
    """Checks what the scheduler will need: a registered task, a cron expression croniter
    accepts, a known time zone, JSON arguments."""

    args = _json_field("[]", _('A JSON list of positional arguments, e.g. ["a@example.com", 3].'))
    kwargs = _json_field("{}", _('A JSON object of keyword arguments, e.g. {"dry_run": true}.'))

    class Meta:
        model = PeriodicTask
        fields = ("name", "task_name", "cron", "timezone", "args", "kwargs", "queue",
                  "enabled")
        widgets = {"task_name": TaskNameInput(attrs={"class": "vTextField"})}
        help_texts = {
            "cron": _('5 fields (minute hour day-of-month month day-of-week), e.g. '
                      '"*/15 * * * *", or 6 with seconds first, e.g. "*/10 * * * * *".'),
            "timezone": _('An IANA time zone such as "UTC" or "Europe/Paris".'),
            "queue": _("Leave empty to use the task's own queue."),
        }

    def clean_task_name(self) -> str:
        name = str(self.cleaned_data["task_name"]).strip()
        # resolve(): a Django @task is found by its module path, as the worker finds it
        if registry.resolve(name) is None:
            raise forms.ValidationError(
                _("No task named %(name)s is registered in this process (check the name, and "
                  "that its module is a tasks module of an installed app; a Django @task is "
                  "named by its module path, e.g. myapp.tasks.send_email)."),
                params={"name": name})
        return name

    def clean_cron(self) -> str:
        cron = " ".join(str(self.cleaned_data["cron"]).split())
        try:
            validate_cron(cron)  # the scheduler's own check
        except ConfigurationError as exc:
            raise forms.ValidationError(str(exc)) from None
        return cron

    def clean_timezone(self) -> str:
        tz = str(self.cleaned_data["timezone"]).strip()
        try:
            zone(tz)
        except ConfigurationError:
            raise forms.ValidationError(_("%(tz)s is not a known time zone."),
                                        params={"tz": tz}) from None
        return tz

    def _json(self, field: str, kind: type, empty: str, what: str) -> str:
        text = str(self.cleaned_data.get(field) or "").strip() or empty
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s"),
                                        params={"error": exc}) from None
        if not isinstance(value, kind):
            raise forms.ValidationError(_("Must be a JSON %(what)s."), params={"what": what})
        return dumps(value, field)

    def clean_args(self) -> str:
        return self._json("args", list, "[]", "list")

    def clean_kwargs(self) -> str:
        return self._json("kwargs", dict, "{}", "object")

    def clean_queue(self) -> str | None:
        return str(self.cleaned_data.get("queue") or "").strip() or None


class PeriodicTaskAdmin(TaskitoAdmin):
    form = PeriodicTaskForm
    list_display = ("name", "task_name", "cron", "timezone", "enabled", "next_fire",
                    "last_run_at")
    list_filter = ("enabled",)
    search_fields = ("name", "task_name")
    ordering = ("name",)
    actions = ["enable_tasks", "disable_tasks"]
    readonly_fields = ("next_fire_times", "next_run_at", "last_run_at", "created_at",
                       "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "task_name", "enabled"), "description": HOW_IT_RUNS}),
        (_("When"), {"fields": ("cron", "timezone", "next_fire_times")}),
        (_("Call"), {"fields": ("args", "kwargs", "queue")}),
        (_("Bookkeeping"), {"fields": ("next_run_at", "last_run_at", "created_at",
                                       "updated_at")}),
    )

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "taskito_notice": HOW_IT_RUNS})

    @admin.display(description=_("next fire"))
    def next_fire(self, obj: PeriodicTask) -> str:
        """When the cron fires next, in the schedule's own time zone."""
        times = next_fire_times(obj.cron, obj.timezone, timezone.now(), 1)
        return f"{times[0]:%Y-%m-%d %H:%M:%S} ({obj.timezone})" if times else "-"

    @admin.display(description=_("next three fire times"))
    def next_fire_times(self, obj: PeriodicTask) -> SafeString | str | Promise:
        if not obj.cron:
            return "-"
        times = next_fire_times(obj.cron, obj.timezone, timezone.now())
        if not times:
            return _("none (the expression or the time zone is not valid)")
        return format_html_join("", '<div class="taskito-fire">{} ({})</div>',
                                ((t.strftime("%Y-%m-%d %H:%M:%S"), obj.timezone)
                                 for t in times))

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # The scheduler fires a row when `next_run_at` has come: a new schedule, a changed
        # one, or one switched back on starts from its next time after now (no catch-up).
        task = cast(PeriodicTask, obj)
        timing = {"cron", "timezone", "enabled"}
        if task.enabled and (not change or timing & set(form.changed_data)):
            task.next_run_at = next_fire(task.cron, timezone.now(), task.timezone)
        task.save(using=self.queue.using)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        obj.delete(using=self.queue.using)

    @admin.action(description=_("Enable selected periodic tasks"), permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Disable selected periodic tasks"), permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._switch(request, queryset, False)

    def _switch(self, request: HttpRequest, queryset: QuerySet, enabled: bool) -> None:
        # Schedules are not job rows: the admin may write them (the Queue owns job rows).
        if enabled:
            tally = Tally(done=phrase("%(count)d periodic task enabled",
                                      "%(count)d periodic tasks enabled"))
        else:
            tally = Tally(done=phrase("%(count)d periodic task disabled",
                                      "%(count)d periodic tasks disabled"))
        rows = list(queryset.values_list("id", "enabled", "cron", "timezone"))
        now = timezone.now()
        schedules = PeriodicTask.objects.using(self.queue.using)
        for pk, on, cron, tz in rows:
            if on == enabled:
                continue
            # Switched on, a schedule starts from its next time after now (no catch-up).
            nxt = {"next_run_at": next_fire(cron, now, tz)} if enabled else {}
            tally.done["done"] += schedules.filter(id=pk, enabled=on).update(
                enabled=enabled, updated_at=now, **nxt)
        unchanged = sum(1 for row in rows if row[1] == enabled)
        if unchanged:
            tally.skip(_("already enabled") if enabled else _("already disabled"), unchanged)
        tally.report(self, request)


class QueueStateAdmin(ReadOnlyAdmin):
    """Queues with a stored switch. A queue without a row yet is paused from the dashboard."""

    list_display = ("name", "paused", "updated_at")
    list_filter = ("paused",)
    search_fields = ("name",)
    ordering = ("name",)
    actions = ["pause_queues", "resume_queues"]

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return self.user_can(request, "change")

    @admin.action(description=_("Pause selected queues"), permissions=["pause"])
    def pause_queues(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Resume selected queues"), permissions=["pause"])
    def resume_queues(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._switch(request, queryset, False)

    def _switch(self, request: HttpRequest, queryset: QuerySet, pause: bool) -> None:
        if pause:
            tally = Tally(done=phrase("%(count)d queue paused", "%(count)d queues paused"))
        else:
            tally = Tally(done=phrase("%(count)d queue resumed", "%(count)d queues resumed"))
        for name, paused in queryset.values_list("name", "paused"):
            if paused == pause:
                tally.skip(_("already paused") if pause else _("not paused"))
                continue
            (self.queue.pause if pause else self.queue.resume)(name)
            tally.add("done")
        tally.report(self, request)
