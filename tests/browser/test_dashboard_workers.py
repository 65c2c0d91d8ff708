"""The dashboard with a real worker process at work: its row with busy slots, and the
per-queue throughput / failure-rate charts (inline SVG drawn by the server), in a real
browser under a strict CSP. Saves docs/dashboard.png, the screenshot the README shows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from taskito.models import Job, TaskMetric, WorkerHeartbeat
from taskito.states import JobStatus
from tests.browser.test_admin import PASSWORD, log_in
from tests.conftest import ROOT, wait_for
from tests.testapp import tasks

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "dashboard.png"


def history(job_id) -> None:
    """The last hour of a busy queue as its metric rows would show it (a worker process in
    a test runs for seconds, not an hour): runs every minute, failures now and then."""
    now = timezone.now()
    rows = []
    for minute in range(1, 58):
        for queue, runs, every in (("default", 6 + minute % 7, 9), ("emails", 2 + minute % 3, 0)):
            for i in range(runs):
                failed = every and (minute + i) % every == 0 and minute % 4 == 0
                rows.append(TaskMetric(job_id=job_id, task_name="t", queue=queue,
                                       succeeded=not failed, wall_time_ms=3.0,
                                       recorded_at=now - timedelta(minutes=minute, seconds=i)))
    TaskMetric.objects.bulk_create(rows)


@pytest.fixture
def operator(transactional_db) -> User:
    return User.objects.create_superuser("operator", "op@example.com", PASSWORD)


# every alias: the worker process's system checks open each one (on MariaDB a missing "jobs"
# test database stops it)
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_dashboard_shows_a_live_worker_and_the_charts(browser_page, operator, start_worker,
                                                      tmp_path: Path):
    from playwright.sync_api import expect

    for n in range(12):
        tasks.add.delay(n, n)
    for _ in range(3):
        tasks.fatal.delay()
    for name in ("alice", "bob", "carol"):
        tasks.send_email.delay(name)
    held = tasks.progress_steps.delay(str(tmp_path), 1)  # holds a slot until released
    worker = start_worker("--concurrency", "4", "--worker-id", "dashboard-demo",
                          "--queues", "default,emails")
    try:
        try:
            wait_for(lambda: Job.objects.filter(id=held.id, status=JobStatus.RUNNING).exists()
                     and TaskMetric.objects.count() >= 18, timeout=60)
        except AssertionError:
            raise AssertionError(f"the worker did not get there:\n{worker.stderr[-3000:]}\n"
                                 f"{list(Job.objects.values_list('task_name', 'status'))}"
                                 ) from None
        wait_for(lambda: WorkerHeartbeat.objects.filter(worker_id="dashboard-demo").exists())
        tasks.noop.apply_async(queue="reports")  # waiting: no worker takes "reports"
        history(Job.objects.filter(status=JobStatus.COMPLETE).values_list("id", flat=True)[0])

        log_in(browser_page, operator)
        page = browser_page.page
        page.goto("/admin/taskito/job/dashboard/?refresh=0")
        row = page.locator("tr.taskito-worker[data-worker=dashboard-demo]")
        expect(row).to_be_visible()
        expect(row.locator(".taskito-busy-count")).to_have_text("1 / 4")
        expect(row.locator("meter")).to_be_visible()
        expect(page.locator(".taskito-chart svg rect.bar-ok").first).to_be_visible()
        expect(page.locator(".taskito-chart svg rect.bar-bad").first).to_be_visible()
        chart = page.locator("[data-queue-chart=default] svg")
        expect(chart).to_be_visible()
        expect(chart.locator("rect.bar-bad").first).to_be_attached()
        expect(page.locator("[data-queue-chart=emails] svg rect.bar-ok").first).to_be_attached()
        expect(page.locator("tr[data-queue=default] .taskito-queue-workers")).to_have_text("1")
        expect(page.locator("tr[data-queue=reports] .taskito-queue-workers")).to_have_text("0")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 20
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser_page.screenshot("dashboard-workers")
        assert browser_page.console_errors == []  # nothing refused by the CSP
    finally:
        (tmp_path / "1").touch()  # let the held job finish
        worker.popen.terminate()  # it drains: the held job completes
        worker.popen.wait(timeout=60)
