"""`manage.py taskito_health [--worker ID]`: a container's exec probe. Exit 0 when the
database answers and this host's worker (or worker ID) heartbeated within
TASKITO["WORKER_STALE_AFTER"] seconds; otherwise print one line why and exit 1."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.queue import Queue
from taskito.queue import queue as default_queue


def health_check(queue: Queue, worker_id: str | None = None, hostname: str | None = None,
                 now: datetime | None = None) -> tuple[bool, str]:
    """(alive, one line saying why): from the newest heartbeat of worker `worker_id`, else
    of any worker on `hostname` (this host by default)."""
    from taskito.models import WorkerHeartbeat

    host = hostname or socket.gethostname()
    rows = WorkerHeartbeat.objects.using(queue.using)
    try:
        found = (rows.filter(worker_id=worker_id) if worker_id else rows.filter(hostname=host)
                 ).order_by("-last_seen").values_list("worker_id", "last_seen").first()
    except DatabaseError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return False, f"database unreachable: {first_line}"
    if found is None:
        return False, (f"no worker row for worker {worker_id}" if worker_id
                       else f"no worker row for host {host}")
    name, last_seen = found
    age = ((now or timezone.now()) - last_seen).total_seconds()
    limit = float(taskito_settings.WORKER_STALE_AFTER)
    if age > limit:
        return False, (f"worker {name} stale by {age - limit:.0f} s (last heartbeat "
                       f"{age:.0f} s ago, limit {limit:g} s)")
    return True, f"ok: worker {name} heartbeated {age:.0f} s ago"


class Command(BaseCommand):
    help = ("Exit 0 when the database answers and this host's worker (or --worker ID) "
            "heartbeated within WORKER_STALE_AFTER; else print why and exit 1.")
    # A probe runs every few seconds: no system checks (which may open every database alias
    # and would print their warnings) before its one query.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker", default=None, metavar="ID",
                            help="check this worker id instead of any worker on this host")

    def handle(self, *args: Any, **options: Any) -> None:
        alive, line = health_check(default_queue, worker_id=options["worker"])
        if not alive:
            self.stderr.write(line)
            raise SystemExit(1)
        self.stdout.write(line)
