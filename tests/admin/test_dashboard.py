"""The dashboard page: counts, the last hour, queues, workers, and queue switches."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from taskito.admin.dashboard import age
from taskito.models import CircuitBreaker, Job, TaskMetric, WorkerHeartbeat
from tests.admin.conftest import messages_of
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:taskito_dashboard")
SWITCH = reverse("admin:taskito_queue_switch")


def metric(job_id, minutes_ago: float, succeeded: bool = True) -> TaskMetric:
    return TaskMetric(job_id=job_id, task_name="t", queue="default", succeeded=succeeded,
                      wall_time_ms=1.0,
                      recorded_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_dashboard_shows_counts_by_status_and_queue(superuser_client, completed_job):
    completed_job()
    tasks.send_email.map([("a",), ("b",)])
    tasks.noop.apply_async(queue="reports")
    response = superuser_client.get(DASHBOARD)
    assert response.status_code == 200
    statuses = {s["label"]: s["count"] for s in response.context["statuses"]}
    assert statuses == {"pending": 3, "running": 0, "completed": 1, "failed": 0, "dead": 0,
                        "cancelled": 0}
    queues = {q["name"]: q["stats"] for q in response.context["queues"]}
    assert queues["emails"]["pending"] == 2
    assert queues["default"]["completed"] == 1
    assert queues["reports"]["pending"] == 1
    assert "configured" in queues  # a registered task's queue, no jobs yet


def test_dashboard_shows_the_oldest_due_pending_job_per_queue(superuser_client, queue):
    job = tasks.noop.delay()
    Job.objects.filter(id=job.id).update(scheduled_at=timezone.now() - timedelta(minutes=5))
    tasks.noop.apply_async(queue="later", delay=600)  # not due: not waiting
    response = superuser_client.get(DASHBOARD)
    rows = {q["name"]: q for q in response.context["queues"]}
    assert rows["default"]["oldest_age"].startswith("5 min")
    assert rows["later"]["oldest_age"] is None
    assert "nothing waiting" in response.content.decode()


def test_dashboard_last_hour_throughput_and_failure_rate(superuser_client):
    job = tasks.noop.delay()
    TaskMetric.objects.bulk_create([metric(job.id, 1), metric(job.id, 1),
                                    metric(job.id, 2, succeeded=False), metric(job.id, 30),
                                    metric(job.id, 90)])  # the last one is too old
    response = superuser_client.get(DASHBOARD)
    hour = response.context["hour"]
    assert (hour["runs"], hour["succeeded"], hour["failed"]) == (4, 3, 1)
    assert hour["failure_rate"] == 25.0
    assert len(hour["points"]) == 60
    assert sum(p["ok"] + p["failed"] for p in hour["points"]) == 4
    chart = str(hour["chart"])  # drawn on the server, in the page
    assert chart in response.content.decode()
    assert chart.count('<rect class="bar-ok"') == 2 and chart.count('<rect class="bar-bad"') == 1
    assert '<polyline class="rate"' in chart  # the failure rate through the minutes with runs


def test_dashboard_draws_a_chart_per_queue_on_the_server(superuser_client):
    job = tasks.noop.delay()
    TaskMetric.objects.bulk_create([metric(job.id, 1), metric(job.id, 2, succeeded=False)])
    response = superuser_client.get(DASHBOARD)
    rows = {q["name"]: q for q in response.context["queues"]}
    assert (rows["default"]["runs"], rows["default"]["failed"]) == (2, 1)
    assert rows["default"]["failure_rate"] == 50.0
    assert rows["emails"]["runs"] == 0 and rows["emails"]["failure_rate"] is None
    html = response.content.decode()
    assert 'data-queue-chart="default"><svg class="taskito-chart-svg"' in html
    assert "<script" not in str(rows["default"]["chart"])


def test_dashboard_has_no_inline_script(superuser_client):
    html = superuser_client.get(DASHBOARD).content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert any("taskito/admin/dashboard.js" in tag for tag in scripts)
    for tag in scripts:  # each one is a file or a JSON data block, never code in the page
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert " style=" not in html and "onclick" not in html.lower()


def test_dashboard_says_when_no_worker_runs(superuser_client):
    html = superuser_client.get(DASHBOARD).content.decode()
    assert "No worker is running" in html


def test_dashboard_lists_workers_with_heartbeat_age(superuser_client):
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w-live", hostname="h1", pid=10, concurrency=4,
                                   started_at=now - timedelta(hours=1),
                                   last_seen=now - timedelta(seconds=3))
    WorkerHeartbeat.objects.create(worker_id="w-gone", hostname="h2", pid=11, concurrency=4,
                                   started_at=now - timedelta(hours=1),
                                   last_seen=now - timedelta(minutes=10))
    response = superuser_client.get(DASHBOARD)
    rows = {w["id"]: w for w in response.context["workers"]}
    assert not rows["w-live"]["stale"] and rows["w-gone"]["stale"]
    assert list(rows) == ["w-live", "w-gone"]
    assert rows["w-gone"]["age"].startswith("10 min")
    assert "stale" in response.content.decode()


def test_dashboard_refresh_interval(superuser_client):
    assert 'data-refresh="10"' in superuser_client.get(DASHBOARD).content.decode()
    html = superuser_client.get(DASHBOARD, {"refresh": "0"}).content.decode()
    assert 'data-refresh="0"' in html and "automatic refresh is off" in html
    for given, used in (("2", "2"), ("junk", "10"), ("99999", "3600")):
        html = superuser_client.get(DASHBOARD, {"refresh": given}).content.decode()
        assert f'data-refresh="{used}"' in html


def test_dashboard_shows_a_heartbeat_written_by_the_queue(engine, superuser_client, queue):
    engine.heartbeat(worker_id="w-real", hostname="h", pid=1, queues="*", concurrency=2,
                    started_at=timezone.now())
    response = superuser_client.get(DASHBOARD)
    assert [w["id"] for w in response.context["workers"]] == ["w-real"]
    assert "w-real" in response.content.decode()


def test_dashboard_shows_busy_slots_and_live_workers_per_queue(engine, superuser_client, queue):
    engine.heartbeat(worker_id="w-busy", hostname="h", pid=1, queues="emails", concurrency=4,
                     started_at=timezone.now())
    tasks.send_email.map([("a",), ("b",)])
    assert len(engine.claim(worker_id="w-busy", limit=2, queues=["emails"])) == 2
    response = superuser_client.get(DASHBOARD)
    (worker,) = response.context["workers"]
    assert (worker["busy"], worker["concurrency"], worker["queues"]) == (2, 4, "emails")
    html = response.content.decode()
    assert '<meter min="0" max="4" value="2">' in html and "2 / 4" in html
    rows = {q["name"]: q for q in response.context["queues"]}
    assert rows["emails"]["workers"] == 1 and rows["default"]["workers"] == 0


def test_dashboard_query_budget(superuser_client, completed_job, django_assert_max_num_queries):
    completed_job()
    tasks.send_email.map([("a",)] * 30)
    with django_assert_max_num_queries(9):  # session, user, permissions, the six reads
        superuser_client.get(DASHBOARD)


def test_app_index_and_job_list_link_to_the_dashboard(superuser_client):
    html = superuser_client.get(reverse("admin:app_list", args=["taskito"])).content.decode()
    assert f'href="{DASHBOARD}"' in html
    html = superuser_client.get(reverse("admin:taskito_job_changelist")).content.decode()
    assert f'href="{DASHBOARD}"' in html


# -- who may see it ----------------------------------------------------------------------------

def test_view_only_user_sees_the_dashboard_without_switches(viewer_client):
    response = viewer_client.get(DASHBOARD)
    assert response.status_code == 200
    assert SWITCH not in response.content.decode()


def test_staff_without_job_permission_is_refused(make_staff):
    client = make_staff("stranger")
    assert client.get(DASHBOARD).status_code == 403
    html = client.get(reverse("admin:index")).content.decode()
    assert DASHBOARD not in html


def test_anonymous_is_sent_to_login(anon_client):
    response = anon_client.get(DASHBOARD)
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = anon_client.post(SWITCH, {"queue": "default", "op": "pause"})
    assert response.status_code == 302 and "/login/" in response["Location"]


# -- pausing from the dashboard ----------------------------------------------------------------

def test_pause_and_resume_a_queue_that_has_no_switch_row_yet(superuser_client, queue):
    html = superuser_client.get(DASHBOARD).content.decode()
    assert SWITCH in html
    response = superuser_client.post(SWITCH, {"queue": "emails", "op": "pause"}, follow=True)
    assert response.redirect_chain[-1][0] == DASHBOARD
    assert messages_of(response) == ["Queue emails paused: workers take no new jobs from it."]
    assert queue.paused_queues() == ["emails"]
    rows = {q["name"]: q for q in response.context["queues"]}
    assert rows["emails"]["paused"]
    response = superuser_client.post(SWITCH, {"queue": "emails", "op": "resume"}, follow=True)
    assert messages_of(response) == ["Queue emails resumed."]
    assert queue.paused_queues() == []


def test_switch_refuses_bad_requests(superuser_client, queue):
    assert superuser_client.get(SWITCH).status_code == 405
    response = superuser_client.post(SWITCH, {"queue": "", "op": "pause"}, follow=True)
    assert messages_of(response) == ["Say which queue to pause or resume."]
    superuser_client.post(SWITCH, {"queue": "x", "op": "explode"})
    assert queue.paused_queues() == []


def test_switch_needs_the_queue_state_permission(viewer_client, make_staff, queue):
    assert viewer_client.post(SWITCH, {"queue": "default", "op": "pause"}).status_code == 403
    assert queue.paused_queues() == []
    switcher = make_staff("switcher", "view_job", "change_queuestate")
    assert switcher.post(SWITCH, {"queue": "default", "op": "pause"}).status_code == 302
    assert queue.paused_queues() == ["default"]


# -- the numbers behind it ---------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (61, "1 min 1 s"),
                                               (7380, "2 h 3 min"), (90000, "1 d 1 h")])
def test_age(seconds, text):
    assert age(seconds) == text


def test_throughput_buckets_every_minute(queue):
    job = tasks.noop.delay()
    now = timezone.now()
    TaskMetric.objects.bulk_create([metric(job.id, 0), metric(job.id, 3, succeeded=False)])
    timeline = queue.throughput(5, now=now)
    assert len(timeline) == 5
    assert [(p["succeeded"], p["failed"]) for p in timeline][-1] == (1, 0)
    assert sum(p["failed"] for p in timeline) == 1
    assert timeline[-1]["minute"] == now.replace(second=0, microsecond=0)
    with pytest.raises(ValueError):
        queue.throughput(0)


def test_oldest_pending_ignores_jobs_not_due_and_other_states(queue, completed_job):
    completed_job()
    due = tasks.noop.delay()
    tasks.noop.apply_async(delay=60)
    tasks.noop.apply_async(queue="later", delay=60)
    oldest = queue.oldest_pending()
    assert set(oldest) == {"default"}
    assert oldest["default"] == Job.objects.get(id=due.id).scheduled_at


def test_dashboard_lists_circuit_breakers_open_first(superuser_client):
    CircuitBreaker.objects.create(task_name=tasks.guarded.name, state=1, failure_count=3,
                                  opened_at=timezone.now())
    response = superuser_client.get(DASHBOARD)
    (shown,) = [b for b in response.context["breakers"]
                if b["task_name"] == tasks.guarded.name]
    assert (shown["state"], shown["failure_count"]) == ("open", 3)
    assert response.context["breakers"][0] is shown
    html = response.content.decode()
    assert f'data-task="{tasks.guarded.name}" data-state="open"' in html
