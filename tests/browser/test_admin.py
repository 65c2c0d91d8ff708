"""The operator's path through the admin in a real browser: log in, retry a dead letter,
cancel a pending job, watch the dashboard (which must refresh itself under a strict CSP)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from taskito import queue
from taskito.models import DeadLetter, Job, TaskMetric
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(transactional_db) -> User:
    return User.objects.create_superuser("operator", "op@example.com", PASSWORD)


def log_in(bp, user: User) -> None:
    from playwright.sync_api import expect

    page = bp.page
    page.goto("/admin/login/?next=/admin/taskito/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(user.username.upper(),
                                                        ignore_case=True)
    expect(page.locator(".taskito-operations")).to_be_visible()


def run_action(page, action: str) -> None:
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_log_in_and_retry_a_dead_letter(browser_page, operator):
    from playwright.sync_api import expect

    job = tasks.fatal.delay()
    Worker(queue, worker_id="browser-test").run_until_empty()
    letter = DeadLetter.objects.get(original_job_id=job.id)
    log_in(browser_page, operator)
    page = browser_page.page
    page.click("text=Dead letters")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("Fatal: not worth retrying")
    page.check(f"input.action-select[value='{letter.id}']")
    run_action(page, "retry_dead_letters")
    expect(page.locator(".messagelist")).to_have_text("1 dead letter retried.")
    browser_page.screenshot("retried")
    assert not DeadLetter.objects.exists()
    assert Job.objects.filter(task_name=job.task_name, status=0).count() == 1
    assert browser_page.console_errors == []


def test_cancel_a_pending_job(browser_page, operator):
    from playwright.sync_api import expect

    job = tasks.send_email.delay("someone@example.com")
    log_in(browser_page, operator)
    page = browser_page.page
    page.click("text=Jobs")
    page.click("#changelist-filter >> text=pending")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.check(f"input.action-select[value='{job.id}']")
    run_action(page, "cancel_jobs")
    expect(page.locator(".messagelist")).to_have_text("1 job cancelled.")
    assert Job.objects.get(id=job.id).status_label == "cancelled"
    page.goto(f"/admin/taskito/job/{job.id}/change/")
    expect(page.locator(".field-status_badge .taskito-status")).to_have_text("cancelled")
    browser_page.screenshot("job-page")
    assert browser_page.console_errors == []


def test_dashboard_draws_its_chart_refreshes_and_pauses_a_queue(browser_page, operator):
    from playwright.sync_api import expect

    done = tasks.add.delay(1, 2)
    Worker(queue, worker_id="browser-test").run_until_empty()
    tasks.send_email.map([("a",), ("b",)])
    now = timezone.now()
    TaskMetric.objects.bulk_create([
        TaskMetric(job_id=done.id, task_name="t", queue="default", succeeded=i % 5 != 0,
                   wall_time_ms=2.0, recorded_at=now - timedelta(minutes=i % 50))
        for i in range(200)])
    log_in(browser_page, operator)
    page = browser_page.page
    page.click(".taskito-operations >> text=Dashboard")
    expect(page.locator("h1")).to_have_text("Taskito dashboard")
    expect(page.locator(".taskito-chart svg rect.bar-ok").first).to_be_visible()
    expect(page.locator(".taskito-chart svg rect.bar-bad").first).to_be_visible()
    expect(page.locator("[data-status=pending]")).to_have_text("2")
    browser_page.screenshot("dashboard")

    # The page refreshes itself: with ?refresh=1 a new job shows up without a reload.
    page.goto("/admin/taskito/job/dashboard/?refresh=1")
    expect(page.locator("[data-status=pending]")).to_have_text("2")
    tasks.noop.delay()
    expect(page.locator("[data-status=pending]")).to_have_text("3")
    expect(page.locator(".taskito-chart svg rect.bar-ok").first).to_be_visible()  # redrawn

    page.goto("/admin/taskito/job/dashboard/?refresh=0")
    page.locator("tr[data-queue=emails]").get_by_role("button", name="Pause").click()
    expect(page.locator(".messagelist")).to_contain_text("Queue emails paused")
    expect(page.locator("tr[data-queue=emails] .taskito-status")).to_have_text("paused")
    assert queue.paused_queues() == ["emails"]
    browser_page.screenshot("paused")
    assert browser_page.console_errors == []  # nothing refused by the CSP, no JS error
