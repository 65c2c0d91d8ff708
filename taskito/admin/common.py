"""Pieces every taskito admin shares: a paginator that never counts a whole table, filters
whose choices cost no query, read-only defaults and the "N done, M skipped (why)" report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise, cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from taskito.queue import Queue
from taskito.queue import queue as default_queue
from taskito.registry import registry

#: An action processes at most this many rows per run (a "select all" over a million
#: rows would otherwise be one endless request); the report says when rows were left.
ACTION_LIMIT = 10_000
#: Pages the changelist counts ahead of the one shown: the count stops there.
LOOKAHEAD_PAGES = 10
#: The largest page number the count looks ahead from: beyond it, `?p=` is a page past the
#: end (Django's "invalid page" answer), never a LIMIT that overflows the database.
MAX_PAGE_HINT = 10_000

#: `@admin.action(**EVERYWHERE)`: on the changelist and, from Django 6.1, on an object's page.
try:  # Django 6.1: actions can also sit on an object's own page
    from django.contrib.admin import ActionLocation

    EVERYWHERE: dict[str, Any] = {
        "location": [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]}
except ImportError:  # pragma: no cover - older Django: changelist actions only
    EVERYWHERE = {}


class CappedPaginator(Paginator):
    """Counts rows only up to a few pages past the current one.

    `COUNT(*)` over a million-row table on every changelist page is what makes admins slow;
    counting a LIMIT-ed subquery costs no more than reading the page itself. When the cap is
    reached `capped` is True and templates say "more than N"."""

    def __init__(self, object_list: Any, per_page: int, orphans: int = 0,
                 allow_empty_first_page: bool = True, *, page_hint: int = 1) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.page_hint = min(max(1, page_hint), MAX_PAGE_HINT)
        self.capped = False

    @cached_property
    def count(self) -> int:
        limit = (self.page_hint + LOOKAHEAD_PAGES) * int(self.per_page)
        counted = cast(QuerySet, self.object_list)[:limit + 1].count()
        self.capped = counted > limit
        return min(counted, limit)


def page_hint(request: HttpRequest) -> int:
    """The requested page number, within 1..MAX_PAGE_HINT (garbage reads as 1)."""
    try:
        return min(max(1, int(request.GET.get("p", 1))), MAX_PAGE_HINT)
    except ValueError:
        return 1


class DeferringChangeList(ChangeList):
    """A changelist that leaves the model admin's `list_defer` columns unread."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        qs = super().get_queryset(request, exclude_parameters)
        deferred = getattr(self.model_admin, "list_defer", ())
        return qs.defer(*deferred) if deferred else qs


class TaskitoAdmin(admin.ModelAdmin):
    """Defaults for taskito's tables: no counts of the whole table, no facets, no Django
    `delete_selected` (which would delete rows behind the Queue's back)."""

    #: The Queue that actions call; subclass and set another one for another database.
    queue: Queue = default_queue
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    list_max_show_all = 500
    list_defer: tuple[str, ...] = ()
    change_list_template = "taskito/admin/change_list.html"

    class Media:
        css = {"all": ["taskito/admin/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).using(self.queue.using)

    def get_paginator(self, request: HttpRequest, queryset: Any, per_page: int,
                      orphans: int = 0, allow_empty_first_page: bool = True) -> Paginator:
        return CappedPaginator(queryset, per_page, orphans, allow_empty_first_page,
                               page_hint=page_hint(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 asks per location (changelist or change page); older ones do not.
        where = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **where)
        actions.pop("delete_selected", None)
        return actions

    def user_can(self, request: HttpRequest, action: str, model: str | None = None) -> bool:
        """Does the user hold taskito's `<action>_<model>` permission?"""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{action}_{model or opts.model_name}")


class ReadOnlyAdmin(TaskitoAdmin):
    """Rows only the queue writes: the admin shows them and never adds, edits or deletes."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# -- filters whose choices cost no query ---------------------------------------------------------

class _ValueFilter(admin.SimpleListFilter):
    """A filter over one column whose choices come from the task registry (and a little
    more), never from `SELECT DISTINCT` over the whole table; any value in the URL works."""

    field = ""

    def known(self, request: HttpRequest, model_admin: Any) -> Iterable[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = set(self.known(request, model_admin))
        if self.value() and not has_nul(self.value()):
            names.add(str(self.value()))
        return [(n, n) for n in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if has_nul(value):  # no row holds one, and PostgreSQL refuses to compare it
            return queryset.none()
        return queryset.filter(**{self.field: value})


def has_nul(value: Any) -> bool:
    """Whether a filter's value from the URL holds a NUL character (`?queue=a%00b`)."""
    return "\x00" in str(value)


class QueueFilter(_ValueFilter):
    title = _("queue")
    parameter_name = field = "queue"

    def known(self, request: HttpRequest, model_admin: Any) -> Iterable[str]:
        return known_queues(model_admin.queue)


class TaskNameFilter(_ValueFilter):
    title = _("task")
    parameter_name = field = "task_name"

    def known(self, request: HttpRequest, model_admin: Any) -> Iterable[str]:
        return registry.names()


def known_queues(queue: Queue) -> set[str]:
    """Queues named by registered tasks, the default queue and every QueueState row."""
    names = {spec.queue for name in registry.names()
             if (spec := registry.find(name)) is not None and spec.queue}
    names.add(queue.default_queue)
    names.update(queue.queue_state_model.objects.using(queue.using)
                 .values_list("name", flat=True))
    return names


# -- reporting ---------------------------------------------------------------------------------

Phrase = Callable[[int], str]


def phrase(singular: str, plural: str) -> Phrase:
    """`phrase("%(count)d job cancelled", "%(count)d jobs cancelled")(2)` -> '2 jobs ...'."""
    return lambda n: ngettext(singular, plural, n) % {"count": n}


class Tally:
    """What an action did and what it skipped (and why), reported as one message."""

    def __init__(self, **done: Phrase) -> None:
        self.phrases = done
        self.done: dict[str, int] = dict.fromkeys(done, 0)
        self.skipped: dict[str, int] = {}
        self.left_over = False

    def add(self, outcome: str, count: int = 1) -> None:
        self.done[outcome] += count

    def skip(self, reason: str | Promise, count: int = 1) -> None:
        key = str(reason)
        self.skipped[key] = self.skipped.get(key, 0) + count

    def message(self) -> str:
        parts = [self.phrases[k](n) for k, n in self.done.items() if n]
        if not parts:  # nothing done: still say so with the first phrase
            first = next(iter(self.phrases))
            parts.append(self.phrases[first](0))
        skipped = sum(self.skipped.values())
        if skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.items())
            parts.append(ngettext("%(count)d skipped", "%(count)d skipped", skipped)
                         % {"count": skipped} + f" ({reasons})")
        text = ", ".join(parts) + "."
        if self.left_over:
            text += " " + ngettext(
                "Only the first %(count)d selected row was processed; run the action again "
                "for the rest.",
                "Only the first %(count)d selected rows were processed; run the action again "
                "for the rest.", ACTION_LIMIT) % {"count": ACTION_LIMIT}
        return text

    def report(self, model_admin: admin.ModelAdmin, request: HttpRequest) -> None:
        level = messages.WARNING if self.skipped or self.left_over else messages.SUCCESS
        model_admin.message_user(request, self.message(), level)


def limited(rows: QuerySet, tally: Tally) -> list[Any]:
    """The first ACTION_LIMIT rows of `rows`; notes on the tally when more were selected."""
    taken = list(rows[:ACTION_LIMIT + 1])
    if len(taken) > ACTION_LIMIT:
        tally.left_over = True
        taken = taken[:ACTION_LIMIT]
    return taken


# -- display helpers ---------------------------------------------------------------------------

def pretty_json(text: str | None) -> SafeString | str:
    """Stored JSON text, indented, in a <pre>; '-' when absent."""
    if text is None:
        return "-"
    try:
        value = json.loads(text)
    except ValueError:
        shown = text
    else:
        shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if len(shown) > 80:  # long values read better indented
            shown = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre class="taskito-pre">{}</pre>', shown)


def pre(text: str | None) -> SafeString | str:
    return format_html('<pre class="taskito-pre">{}</pre>', text) if text else "-"


def job_url(model_admin: admin.ModelAdmin, job_id: Any) -> str:
    return reverse(f"{model_admin.admin_site.name}:taskito_job_change", args=[job_id])


def job_link(model_admin: admin.ModelAdmin, job_id: Any, label: Any = None) -> SafeString:
    """A link to a job's admin page (no query: the id is enough)."""
    return format_html('<a href="{}">{}</a>', job_url(model_admin, job_id),
                       label if label is not None else job_id)


def short_time(value: datetime | None) -> SafeString | str:
    """A compact local time: '17:02:03' today, '2025-01-31 17:02' before; the full time in
    its tooltip; '-' when absent."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    today = local.date() == timezone.localdate()
    shown = local.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")
    return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(),
                       local.strftime("%Y-%m-%d %H:%M:%S.%f %Z"), shown)
