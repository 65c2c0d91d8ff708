"""Which rows: named QuerySet filters over jobs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

from taskito.states import JobStatus

if TYPE_CHECKING:
    from taskito.models import Job

    _Base = models.QuerySet[Job]
else:
    _Base = models.QuerySet


class JobQuerySet(_Base):
    """Job filters named after states."""

    def pending(self) -> JobQuerySet:
        return self.filter(status=JobStatus.PENDING)

    def ready(self, now: datetime) -> JobQuerySet:
        return self.filter(status=JobStatus.PENDING, scheduled_at__lte=now)

    def runnable(self, now: datetime) -> JobQuerySet:
        """What a worker would claim at `now`, in claim order: ready, not expired, in a queue
        that is not paused, every dependency complete."""
        from taskito.models import JobDependency, QueueState

        waiting = JobDependency.objects.filter(job_id=models.OuterRef("pk")).exclude(
            depends_on__status=JobStatus.COMPLETE)
        paused = QueueState.objects.filter(paused=True).values("name")
        return (self.ready(now)
                .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))
                .exclude(queue__in=paused)
                .filter(models.Q(has_dependencies=False) | ~models.Exists(waiting))
                .order_by("-priority", "scheduled_at", "id"))

    def running(self) -> JobQuerySet:
        return self.filter(status=JobStatus.RUNNING)

    def finished_before(self, cutoff: datetime, *statuses: JobStatus) -> JobQuerySet:
        return self.filter(status__in=list(statuses), completed_at__lt=cutoff)

    def in_queue(self, name: str | None) -> JobQuerySet:
        return self if name is None else self.filter(queue=name)
