"""Queue.overview(): the operator's picture in a fixed number of reads, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from taskito.models import Job, TaskMetric
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

#: what overview() sends, whatever the number of jobs, queues and workers
READS = 6


def beat(engine, worker_id: str, queues: str = "*", concurrency: int = 4,
         now: datetime | None = None) -> None:
    at = now or timezone.now()
    engine.heartbeat(worker_id=worker_id, hostname="host-a", pid=321, queues=queues,
                     concurrency=concurrency, started_at=at - timedelta(minutes=5), now=at)


def metric(job_id, queue: str, at: datetime, succeeded: bool = True) -> TaskMetric:
    return TaskMetric(job_id=job_id, task_name="t", queue=queue, succeeded=succeeded,
                      wall_time_ms=1.0, recorded_at=at)


def by_name(overview) -> dict:
    return {q["name"]: q for q in overview["queues"]}


def test_counts_oldest_wait_paused_and_dead_letters(queue, completed_job, dead_job):
    completed_job()
    dead_job()
    waiting = tasks.noop.apply_async(queue="mail")
    Job.objects.filter(id=waiting.id).update(scheduled_at=timezone.now() - timedelta(minutes=3))
    tasks.noop.apply_async(queue="mail")
    tasks.noop.apply_async(queue="later", delay=600)  # pending but not due: not waiting
    queue.pause("mail")
    queue.pause("idle")
    seen = queue.overview()
    rows = by_name(seen)
    assert rows["mail"]["jobs"] == {"pending": 2, "running": 0, "completed": 0, "failed": 0,
                                    "dead": 0, "cancelled": 0}
    assert 180 <= rows["mail"]["oldest_pending_seconds"] < 240
    assert rows["mail"]["paused"] and rows["idle"]["paused"]
    assert not rows["default"]["paused"]
    assert rows["later"]["jobs"]["pending"] == 1
    assert rows["later"]["oldest_pending_seconds"] is None
    assert rows["default"]["jobs"]["completed"] == 1 and rows["default"]["jobs"]["dead"] == 1
    assert seen["dead_letters"] == 1
    assert seen["jobs"]["pending"] == 3 and seen["jobs"]["completed"] == 1
    assert "configured" in rows  # a registered task's queue with no job yet


def test_throughput_per_queue_and_minute(queue):
    job = tasks.noop.delay()
    now = datetime(2026, 12, 3, 12, 30, 20, tzinfo=UTC)
    TaskMetric.objects.bulk_create([
        metric(job.id, "mail", now),  # the current minute
        metric(job.id, "mail", now - timedelta(seconds=15)),
        metric(job.id, "mail", now - timedelta(minutes=2), succeeded=False),
        metric(job.id, "reports", now - timedelta(minutes=4, seconds=20)),  # 12:26:00 sharp
        metric(job.id, "reports", now - timedelta(minutes=4, seconds=21)),  # 12:25:59: outside
        metric(job.id, "mail", now + timedelta(minutes=1)),  # the future: outside
    ])
    seen = queue.overview(minutes=5, now=now)
    rows = by_name(seen)
    mail = rows["mail"]["throughput"]
    assert [p["minute"] for p in mail] == [datetime(2026, 12, 3, 12, m, tzinfo=UTC)
                                           for m in range(26, 31)]
    assert [(p["succeeded"], p["failed"]) for p in mail] == [(0, 0), (0, 0), (0, 1), (0, 0),
                                                             (2, 0)]
    assert (rows["mail"]["succeeded"], rows["mail"]["failed"]) == (2, 1)
    assert [p["succeeded"] for p in rows["reports"]["throughput"]] == [1, 0, 0, 0, 0]
    assert [(p["succeeded"], p["failed"]) for p in seen["throughput"]] == [
        (1, 0), (0, 0), (0, 1), (0, 0), (2, 0)]
    assert rows["default"]["throughput"][-1] == {"minute": datetime(2026, 12, 3, 12, 30,
                                                                    tzinfo=UTC),
                                                 "succeeded": 0, "failed": 0}


def test_workers_alive_per_queue_with_busy_slots(queue, engine):
    now = timezone.now()
    beat(engine, "w-all", concurrency=3, now=now)
    beat(engine, "w-mail", queues="mail,reports", now=now - timedelta(seconds=5))
    beat(engine, "w-dead", queues="mail", now=now - timedelta(minutes=10))
    tasks.noop.delay(), tasks.noop.delay()
    assert len(engine.claim(worker_id="w-all", limit=2)) == 2
    with override_settings(TASKITO={"WORKER_STALE_AFTER": 30}):
        seen = queue.overview(now=now)
    workers = {w["id"]: w for w in seen["workers"]}
    assert [w["id"] for w in seen["workers"]] == ["w-all", "w-mail", "w-dead"]
    assert workers["w-all"] == {
        "id": "w-all", "host": "host-a", "pid": 321, "queues": ["*"], "concurrency": 3,
        "busy": 2, "started_at": workers["w-all"]["started_at"],
        "last_heartbeat": workers["w-all"]["last_heartbeat"],
        "seconds_since_heartbeat": workers["w-all"]["seconds_since_heartbeat"], "alive": True}
    assert abs(workers["w-all"]["last_heartbeat"] - now) < timedelta(milliseconds=1)
    assert workers["w-mail"]["alive"] and workers["w-mail"]["queues"] == ["mail", "reports"]
    assert not workers["w-dead"]["alive"]
    assert 599 <= workers["w-dead"]["seconds_since_heartbeat"] <= 601
    rows = by_name(seen)
    assert rows["mail"]["workers"] == 2  # w-all and w-mail; w-dead is stale
    assert rows["default"]["workers"] == 1
    assert rows["default"]["jobs"]["running"] == 2


@pytest.mark.parametrize("size", [1, 40])
def test_reads_do_not_grow_with_jobs_queues_or_workers(queue, engine, count_queries, size):
    now = timezone.now()
    for n in range(size):
        beat(engine, f"w{n}", queues=f"q{n}")
        job = tasks.noop.apply_async(queue=f"q{n}")
        TaskMetric.objects.create(job_id=job.id, task_name="t", queue=f"q{n}",
                                  succeeded=bool(n % 2), wall_time_ms=1.0, recorded_at=now)
    tasks.fatal.apply_async(queue="q0")
    with count_queries() as log:
        seen = queue.overview()
    assert len(log) == READS, log
    assert len(seen["queues"]) >= size


def test_bad_window_is_refused(queue):
    for minutes in (0, 1441, "5", True, 1.5):
        with pytest.raises(ValueError, match="minutes"):
            queue.overview(minutes=minutes)
