"""taskito in the Django admin: jobs, dead letters, errors, logs, metrics, periodic tasks,
queue switches and a dashboard. Every change to a job goes through `Queue`.

The classes are importable for a project that registers them on its own AdminSite
(`site.register(Job, JobAdmin)`), or subclasses them with another `queue`."""

from __future__ import annotations

from django.contrib import admin

from taskito.admin.common import ReadOnlyAdmin, TaskitoAdmin
from taskito.admin.dead_letters import DeadLetterAdmin
from taskito.admin.jobs import JobAdmin
from taskito.admin.records import JobErrorAdmin, TaskLogAdmin, TaskMetricAdmin
from taskito.admin.schedules import PeriodicTaskAdmin, QueueStateAdmin
from taskito.models import (
    DeadLetter,
    Job,
    JobError,
    PeriodicTask,
    QueueState,
    TaskLog,
    TaskMetric,
)

__all__ = [
    "DeadLetterAdmin", "JobAdmin", "JobErrorAdmin", "PeriodicTaskAdmin", "QueueStateAdmin",
    "ReadOnlyAdmin", "TaskLogAdmin", "TaskMetricAdmin", "TaskitoAdmin",
]

admin.site.register(Job, JobAdmin)
admin.site.register(DeadLetter, DeadLetterAdmin)
admin.site.register(JobError, JobErrorAdmin)
admin.site.register(TaskLog, TaskLogAdmin)
admin.site.register(TaskMetric, TaskMetricAdmin)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
admin.site.register(QueueState, QueueStateAdmin)
