"""Middleware used by the tests: recorders (every hook appends to EVENTS), raisers, and one
that rewrites enqueue options."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from taskito import TaskMiddleware

#: (middleware label, hook, detail) for every hook call, in order
EVENTS: list[tuple[str, str, Any]] = []


class Recorder(TaskMiddleware):
    label = "recorder"

    def __init__(self, label: str | None = None) -> None:
        self.label = label or type(self).label

    def on_enqueue(self, task_name, args, kwargs, options):
        EVENTS.append((self.label, "on_enqueue", (task_name, args, kwargs, dict(options))))

    def before(self, ctx):
        EVENTS.append((self.label, "before", ctx))

    def after(self, ctx, result, error):
        EVENTS.append((self.label, "after", (result, error)))

    def on_retry(self, ctx, error, retry_count):
        EVENTS.append((self.label, "on_retry", (error, retry_count)))

    def on_dead_letter(self, ctx, error):
        EVENTS.append((self.label, "on_dead_letter", error))

    def on_timeout(self, ctx):
        EVENTS.append((self.label, "on_timeout", ctx.job_id))

    def on_cancel(self, ctx):
        EVENTS.append((self.label, "on_cancel", ctx.job_id))


class First(Recorder):
    label = "first"


class Second(Recorder):
    label = "second"


class Raising(TaskMiddleware):
    """Raises in every hook but on_enqueue."""

    def _explode(self, *args: Any) -> None:
        raise RuntimeError("middleware exploded")

    before = after = on_retry = on_dead_letter = on_timeout = on_cancel = _explode


class Urgent(TaskMiddleware):
    """Moves every enqueue to queue "urgent" at priority 9, with metadata and a key."""

    def on_enqueue(self, task_name, args, kwargs, options):
        options["priority"] = 9
        options["queue"] = "urgent"
        options["metadata"] = {"tenant": "acme"}
        if args and args[0] == "keyed":
            options["unique_key"] = "from-middleware"


class Refuse(TaskMiddleware):
    def on_enqueue(self, task_name, args, kwargs, options):
        raise PermissionError(f"{task_name} may not be enqueued now")


class NotMiddleware:
    pass


TENANT: ContextVar[str] = ContextVar("tests_tenant")


class SetsTenant(TaskMiddleware):
    """Sets a context variable in `before` that the task reads (an async task too)."""

    def before(self, ctx):
        TENANT.set(f"tenant-of-{ctx.job_id}")
