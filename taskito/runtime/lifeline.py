"""Heartbeats, the lifeline lease and its duties (rescue lost jobs, expire due ones)."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import DatabaseError
from django.utils import timezone

from taskito.conf import taskito_settings
from taskito.registry import registry

if TYPE_CHECKING:
    from taskito.engine import Engine

#: heartbeats, the lifeline lease and its duties (rescue, expiry, periodic runs, purge)
logger = logging.getLogger("taskito.lifeline")

LEASE_NAME = "lifeline"
#: seconds between lease renewals (and expiry passes) of the lease holder, at most: a lease
#: lives 2 x HEARTBEAT_INTERVAL, and is renewed at least twice in that time (so a heartbeat
#: interval under half a second cannot let it lapse between renewals and pass to another)
LEASE_EVERY = 1.0


class Lifeline:
    """Run by every worker's loop: a heartbeat every HEARTBEAT_INTERVAL, and an attempt at
    the lifeline lease every second (every HEARTBEAT_INTERVAL / 2 when that is shorter). The
    one holder across all processes and hosts expires due jobs, fires due periodic tasks,
    every HEARTBEAT_INTERVAL rescues the jobs of workers silent for WORKER_STALE_AFTER
    seconds, and every PURGE_INTERVAL deletes what outlived its result TTL."""

    def __init__(self, engine: Engine, *, worker_id: str, queues: str, concurrency: int,
                 heartbeat_interval: float | None = None,
                 stale_after: float | None = None) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self.heartbeat_interval = float(heartbeat_interval
                                        or taskito_settings.HEARTBEAT_INTERVAL)
        self.stale_after = float(stale_after or taskito_settings.WORKER_STALE_AFTER)
        self.started_at = timezone.now()
        self.leader = False
        self.synced = False
        self.purge_interval = float(taskito_settings.PURGE_INTERVAL)
        self._last_beat = self._last_lease = self._last_rescue = float("-inf")
        self._last_purge = float("-inf")
        self.lease_ttl = 2 * self.heartbeat_interval
        self.lease_every = min(LEASE_EVERY, self.lease_ttl / 4)

    def tick(self, now: datetime | None = None) -> None:
        """Do whatever is due; database errors are logged and retried on the next tick."""
        clock = time.monotonic()
        try:
            if clock - self._last_beat >= self.heartbeat_interval:
                self.beat(now)
                self._last_beat = clock
                if not self.synced:
                    self.sync(now)
            if clock - self._last_lease >= self.lease_every:
                self._last_lease = clock
                leader = self.engine.acquire_lease(
                    LEASE_NAME, self.worker_id, ttl=self.lease_ttl, now=now)
                if leader != self.leader:
                    logger.info("%s lease=%s worker=%s", "acquired" if leader else "lost",
                                LEASE_NAME, self.worker_id)
                self.leader = leader
                if self.leader:
                    self.engine.expire_due(now)
                    self.engine.fire_due_periodic(now)
            if self.leader and clock - self._last_rescue >= self.heartbeat_interval:
                self._last_rescue = clock
                self.engine.rescue_lost_jobs(self.stale_after, now=now)
            if self.leader and clock - self._last_purge >= self.purge_interval:
                self._last_purge = clock
                self.engine.purge_expired(now)
                self.engine.repair_slots()
        except DatabaseError as exc:
            logger.warning("lifeline: database error, retrying on the next tick: %s", exc)

    def start(self, now: datetime | None = None) -> None:
        """First heartbeat, and the schedules declared in code written to their rows."""
        self.beat(now)
        self.sync(now)

    def sync(self, now: datetime | None = None) -> None:
        """Write the schedules declared in code to their rows; retried by tick() on failure."""
        try:
            self.engine.sync_periodic(registry.periodic(), now)
            self.synced = True
        except DatabaseError as exc:
            logger.warning("lifeline: could not sync periodic tasks (will retry): %s", exc)

    def beat(self, now: datetime | None = None) -> None:
        logger.debug("heartbeat worker=%s", self.worker_id)
        self.engine.heartbeat(worker_id=self.worker_id, hostname=socket.gethostname(),
                              pid=os.getpid(), queues=self.queues,
                              concurrency=self.concurrency, started_at=self.started_at,
                              now=now)

    def close(self) -> None:
        """On a clean exit: drop the heartbeat row and hand the lease back."""
        try:
            if self.leader:
                self.engine.release_lease(LEASE_NAME, self.worker_id)
            self.engine.forget_worker(self.worker_id)
        except DatabaseError as exc:
            logger.warning("lifeline: could not remove worker %s: %s", self.worker_id, exc)
