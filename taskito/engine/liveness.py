"""Worker liveness: heartbeats and the leases that elect one lifeline leader."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from taskito.engine.base import EngineBase


class LivenessMixin(EngineBase):
    """What workers tell each other through the database."""

    def heartbeat(self, *, worker_id: str, hostname: str, pid: int, queues: str,
                  concurrency: int, started_at: datetime, now: datetime | None = None) -> None:
        """Record that a worker is alive (one upsert)."""
        self.dialect.heartbeat(worker_id, hostname, pid, queues, concurrency, started_at,
                               now or timezone.now())

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's heartbeat row (on a clean exit)."""
        self.dialect.forget_worker(worker_id)

    def acquire_lease(self, name: str, holder: str, ttl: float,
                      now: datetime | None = None) -> bool:
        """Take or renew lease `name` for `ttl` seconds; True while `holder` holds it."""
        now = now or timezone.now()
        return self.dialect.acquire_lease(name, holder, now + timedelta(seconds=ttl), now)

    def release_lease(self, name: str, holder: str) -> None:
        self.dialect.release_lease(name, holder)
