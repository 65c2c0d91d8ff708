"""The Job admin: list, filters, search, the read-only page, cancel and replay."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from taskito.admin import common
from taskito.admin.jobs import JobAdmin
from taskito.models import DeadLetter, Job, ReplayHistory, TaskLog
from tests.admin.conftest import (
    action_names,
    change_url,
    changelist_url,
    messages_of,
    needs_page_actions,
    run_action,
    status_of,
)
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

JOBS = changelist_url("job")


# -- the list ----------------------------------------------------------------------------------

def test_changelist_shows_status_progress_and_newest_first(superuser_client, pending_job):
    older = pending_job()
    newer = tasks.add.delay(1, 2)
    response = superuser_client.get(JOBS)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="taskito-status taskito-status-pending"' in html
    assert '<progress class="taskito-progress" value="0" max="100">' in html
    rows = list(response.context["cl"].result_list)
    assert [r.id for r in rows] == [newer.id, older.id]


@pytest.mark.parametrize(("query", "expected"), [
    ("status__exact=2", {"done"}),
    ("queue=emails", {"email"}),
    ("task_name=tests.testapp.tasks.noop", {"waiting"}),
])
def test_changelist_filters(superuser_client, completed_job, query, expected):
    ids = {"done": completed_job().id, "email": tasks.send_email.delay("a@b").id,
           "waiting": tasks.noop.delay().id}
    response = superuser_client.get(f"{JOBS}?{query}")
    shown = {r.id for r in response.context["cl"].result_list}
    assert shown == {ids[name] for name in expected}


def test_queue_and_task_filters_list_choices_without_scanning_jobs(superuser_client):
    tasks.noop.apply_async(queue="made-up-queue")
    response = superuser_client.get(JOBS)
    filters = {f.title: [c["display"] for c in f.choices(response.context["cl"])]
               for f in response.context["cl"].filter_specs}
    assert "emails" in filters["queue"]  # from the registry (send_email's queue)
    assert "made-up-queue" not in filters["queue"]  # jobs are not scanned for choices
    assert "tests.testapp.tasks.noop" in filters["task"]
    response = superuser_client.get(f"{JOBS}?queue=made-up-queue")
    assert len(response.context["cl"].result_list) == 1  # any value in the URL still works


@pytest.mark.parametrize("term", ["id", "hex", "task", "key"])
def test_search_by_id_task_name_or_unique_key(superuser_client, term):
    target = tasks.add.apply_async(args=(1, 2), unique_key="nightly-report")
    tasks.noop.delay()
    value = {"id": str(target.id), "hex": target.id.hex, "task": "tasks.add",
             "key": "nightly-report"}[term]
    response = superuser_client.get(JOBS, {"q": value})
    assert [r.id for r in response.context["cl"].result_list] == [target.id]


def test_changelist_query_count_does_not_grow_with_the_page(superuser_client):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert superuser_client.get(JOBS).status_code == 200
        return len(ctx.captured_queries)

    tasks.noop.delay()
    few = queries_for_list()
    tasks.noop.map([() for _ in range(60)])  # more than a page (50)
    many = queries_for_list()
    assert few == many


def test_changelist_query_budget(superuser_client, django_assert_max_num_queries):
    tasks.noop.map([() for _ in range(120)])
    with django_assert_max_num_queries(8):
        superuser_client.get(JOBS)


def test_changelist_never_counts_the_whole_table(superuser_client, monkeypatch):
    monkeypatch.setattr(JobAdmin, "list_per_page", 2)
    monkeypatch.setattr(common, "LOOKAHEAD_PAGES", 3)
    tasks.noop.map([() for _ in range(20)])
    with CaptureQueriesContext(connection) as ctx:
        response = superuser_client.get(JOBS)
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)
    assert response.context["cl"].paginator.capped
    assert "more than 8 jobs" in response.content.decode()
    response = superuser_client.get(JOBS, {"p": "4"})  # pages further on still work
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2


def test_small_result_is_counted_exactly(superuser_client):
    tasks.noop.map([() for _ in range(3)])
    response = superuser_client.get(JOBS)
    assert not response.context["cl"].paginator.capped
    assert "3 jobs" in response.content.decode()


# -- the job page ------------------------------------------------------------------------------

def test_job_page_is_read_only_and_shows_call_outcome_and_history(superuser_client, worker):
    job = tasks.logs_extra.apply_async(args=("careful", {"n": 1}), metadata={"user": 7})
    worker.run_until_empty()
    replay = tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[job.id])
    response = superuser_client.get(change_url("job", job.id))
    assert response.status_code == 200
    html = response.content.decode()
    assert "&quot;careful&quot;" in html  # arguments
    assert "&quot;user&quot;: 7" in html  # metadata
    assert "warning" in html and "careful" in html  # log lines
    assert TaskLog.objects.filter(job_id=job.id).exists()
    assert str(child.id) in html  # dependents
    assert 'name="_save"' not in html  # read-only: no save button
    assert str(replay.id) not in html
    post = superuser_client.post(change_url("job", job.id), {"task_name": "x"})
    assert post.status_code == 403


def test_job_page_shows_the_partial_result(engine, superuser_client, queue):
    job = tasks.noop.delay()
    claimed = engine.claim(worker_id="admin-tests", limit=1)[0]
    engine.set_progress(claimed.id, claimed.token, 50, partial={"rows_so_far": 1234})
    html = superuser_client.get(change_url("job", job.id)).content.decode()
    assert "Partial result" in html and "&quot;rows_so_far&quot;: 1234" in html


def test_job_page_shows_errors_and_replay_history(superuser_client, worker, queue):
    job = tasks.always_fails.apply_async(args=("kaput",))
    worker.run_until_empty()
    assert status_of(job) == "dead"
    new = queue.replay(job.id)
    html = superuser_client.get(change_url("job", job.id)).content.decode()
    assert html.count("Retryable: kaput") >= 3  # the job's error and each failed attempt
    assert str(new.id) in html and "replayed as" in html
    html = superuser_client.get(change_url("job", new.id)).content.decode()
    assert str(job.id) in html and "replay of" in html


def test_job_page_query_budget(superuser_client, completed_job, django_assert_max_num_queries):
    job = completed_job()
    with django_assert_max_num_queries(14):
        assert superuser_client.get(change_url("job", job.id)).status_code == 200


def test_unknown_job_page_redirects_with_a_message(superuser_client):
    response = superuser_client.get(change_url("job", "0" * 32), follow=True)
    assert response.status_code == 200
    assert any("exist" in m for m in messages_of(response))


# -- cancel ------------------------------------------------------------------------------------

def test_cancel_cancels_pending_requests_running_and_skips_finished(
        superuser_client, pending_job, running_job, completed_job):
    done = completed_job()  # first: the worker would run the others
    busy = running_job()  # claims every pending job, so before the pending one
    waiting = pending_job()
    response = run_action(superuser_client, "job", "cancel_jobs", [waiting.id, busy.id, done.id])
    assert messages_of(response) == [
        "1 job cancelled, cancel requested for 1 running job, 1 skipped (1 already finished)."]
    assert status_of(waiting) == "cancelled"
    assert Job.objects.get(id=busy.id).cancel_requested
    assert status_of(busy) == "running"
    assert status_of(done) == "complete"


def test_cancel_reports_plurals(superuser_client, pending_job):
    jobs = [pending_job(), pending_job()]
    response = run_action(superuser_client, "job", "cancel_jobs", [j.id for j in jobs])
    assert messages_of(response) == ["2 jobs cancelled."]


def test_cancel_skips_a_running_job_already_asked_to_stop(superuser_client, running_job, queue):
    busy = running_job()
    queue.cancel_running_job(busy.id)
    response = run_action(superuser_client, "job", "cancel_jobs", [busy.id])
    assert messages_of(response) == ["0 jobs cancelled, 1 skipped (1 cancel already requested)."]


@needs_page_actions
def test_cancel_from_the_job_page_returns_to_it(superuser_client, pending_job):
    job = pending_job()
    url = change_url("job", job.id)
    response = superuser_client.post(url, {"CHANGE_FORM-action": "cancel_jobs",
                                           "_selected_action": str(job.id)}, follow=True)
    assert response.redirect_chain[-1][0] == url
    assert messages_of(response) == ["1 job cancelled."]
    assert status_of(job) == "cancelled"


# -- replay ------------------------------------------------------------------------------------

def test_replay_runs_finished_jobs_again_and_skips_unfinished(
        superuser_client, completed_job, pending_job):
    done, waiting = completed_job(), pending_job()
    response = run_action(superuser_client, "job", "replay_jobs", [done.id, waiting.id])
    assert messages_of(response) == ["1 job replayed, 1 skipped (1 not finished yet)."]
    link = ReplayHistory.objects.get()
    assert link.original_job_id == done.id
    assert status_of(link.replay_job_id) == "pending"


def test_replay_reports_plurals(superuser_client, completed_job):
    jobs = [completed_job(), completed_job()]
    response = run_action(superuser_client, "job", "replay_jobs", [j.id for j in jobs])
    assert messages_of(response) == ["2 jobs replayed."]
    assert ReplayHistory.objects.count() == 2


def test_action_over_a_huge_selection_stops_at_the_limit(superuser_client, monkeypatch):
    monkeypatch.setattr(common, "ACTION_LIMIT", 2)
    tasks.noop.map([() for _ in range(3)])
    response = superuser_client.post(JOBS, {"action": "cancel_jobs", "select_across": "1",
                                            "_selected_action": "x", "index": "0"},
                                     follow=True)
    (message,) = messages_of(response)
    assert message.startswith("2 jobs cancelled.")
    assert "Only the first 2 selected rows were processed" in message
    assert Job.objects.filter(status=0).count() == 1


# -- requeue and revoke ------------------------------------------------------------------------

def test_requeue_puts_dead_and_cancelled_jobs_back_and_skips_others(
        superuser_client, dead_job, pending_job, completed_job, queue):
    done, dead = completed_job(), dead_job()
    cancelled = pending_job()
    queue.cancel_job(cancelled.id)
    waiting = pending_job()
    response = run_action(superuser_client, "job", "requeue_jobs",
                          [dead.id, cancelled.id, done.id, waiting.id])
    assert messages_of(response) == [
        "2 jobs requeued, 2 skipped (2 not failed, dead or cancelled)."]
    assert [status_of(j) for j in (dead, cancelled, done, waiting)] == [
        "pending", "pending", "complete", "pending"]
    assert Job.objects.get(id=dead.id).retry_count == 0
    assert not DeadLetter.objects.exists()


def test_requeue_reports_a_job_the_queue_refuses(superuser_client, dead_job):
    dead = dead_job(unique_key="only-one")
    tasks.noop.apply_async(unique_key="only-one")  # an active job now holds the key
    response = run_action(superuser_client, "job", "requeue_jobs", [dead.id])
    assert messages_of(response) == [
        "0 jobs requeued, 1 skipped (1 a workflow step, waiting on a dependency, or its "
        "unique key taken)."]
    assert status_of(dead) == "dead"


def test_revoke_cancels_every_pending_job_of_the_selected_jobs_tasks(
        superuser_client, pending_job, completed_job):
    done = completed_job()  # tasks.add
    waiting = [pending_job(), pending_job(), tasks.add.delay(1, 1)]
    other = tasks.echo.delay()
    response = run_action(superuser_client, "job", "revoke_tasks", [waiting[0].id, done.id])
    assert messages_of(response) == ["2 tasks revoked (3 pending jobs cancelled)."]
    assert [status_of(j) for j in waiting] == ["cancelled"] * 3
    assert (status_of(done), status_of(other)) == ("complete", "pending")


def test_revoke_with_nothing_pending_says_so(superuser_client, completed_job):
    done = completed_job()
    response = run_action(superuser_client, "job", "revoke_tasks", [done.id])
    assert messages_of(response) == ["1 task revoked (0 pending jobs cancelled)."]


def test_requeue_and_revoke_need_the_change_permission(make_staff, dead_job, pending_job):
    replayer = make_staff("replayer2", "view_job", "add_job")
    dead, waiting = dead_job(), pending_job()
    assert "requeue_jobs" not in action_names(replayer.get(JOBS))
    run_action(replayer, "job", "requeue_jobs", [dead.id])
    run_action(replayer, "job", "revoke_tasks", [waiting.id])
    replayer.post(change_url("job", dead.id), {"CHANGE_FORM-action": "requeue_jobs",
                                               "_selected_action": str(dead.id)})
    assert (status_of(dead), status_of(waiting)) == ("dead", "pending")


# -- permissions -------------------------------------------------------------------------------

def test_superuser_sees_every_job_action(superuser_client):
    assert action_names(superuser_client.get(JOBS)) == ["cancel_jobs", "replay_jobs",
                                                        "requeue_jobs", "revoke_tasks"]


def test_view_only_user_sees_no_action_and_a_forged_post_changes_nothing(
        viewer_client, pending_job, completed_job):
    done = completed_job()
    waiting = pending_job()
    response = viewer_client.get(JOBS)
    assert response.status_code == 200
    assert action_names(response) == []
    assert 'name="action"' not in response.content.decode()
    run_action(viewer_client, "job", "cancel_jobs", [waiting.id])
    run_action(viewer_client, "job", "replay_jobs", [done.id])
    response = viewer_client.post(change_url("job", waiting.id),
                                  {"CHANGE_FORM-action": "cancel_jobs",
                                   "_selected_action": str(waiting.id)})
    assert response.status_code == 403
    assert status_of(waiting) == "pending"
    assert not ReplayHistory.objects.exists()
    assert Job.objects.count() == 2


def test_each_action_needs_its_own_permission(make_staff, pending_job, completed_job):
    canceller = make_staff("canceller", "view_job", "change_job")
    assert action_names(canceller.get(JOBS)) == ["cancel_jobs", "requeue_jobs", "revoke_tasks"]
    done = completed_job()
    run_action(canceller, "job", "replay_jobs", [done.id])
    assert not ReplayHistory.objects.exists()
    replayer = make_staff("replayer", "view_job", "add_job")
    assert action_names(replayer.get(JOBS)) == ["replay_jobs"]
    waiting = pending_job()
    run_action(replayer, "job", "cancel_jobs", [waiting.id])
    assert status_of(waiting) == "pending"


def test_anonymous_is_sent_to_login_and_changes_nothing(anon_client, pending_job):
    waiting = pending_job()
    response = anon_client.get(JOBS)
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = anon_client.post(JOBS, {"action": "cancel_jobs", "index": "0",
                                       "_selected_action": str(waiting.id)})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert status_of(waiting) == "pending"


def test_no_add_edit_or_delete_of_jobs(superuser_client, pending_job):
    job = pending_job()
    assert superuser_client.get(reverse("admin:taskito_job_add")).status_code == 403
    delete_url = reverse("admin:taskito_job_delete", args=[job.id])
    assert superuser_client.get(delete_url).status_code == 403
    assert "delete_selected" not in action_names(superuser_client.get(JOBS))


def test_long_histories_are_cut_with_a_link_to_the_rest(superuser_client, worker, monkeypatch):
    from taskito.admin import jobs

    monkeypatch.setattr(jobs, "PANEL_LIMIT", 2)
    job = tasks.reports.delay(5)
    worker.run_until_empty()
    html = superuser_client.get(change_url("job", job.id)).content.decode()
    assert "step 5" in html and "step 4" in html and "step 3" not in html  # the latest two
    assert f"{changelist_url('tasklog')}?job={job.id}" in html
    response = superuser_client.get(changelist_url("tasklog"), {"job": str(job.id)})
    assert len(response.context["cl"].result_list) == 5


def test_job_page_of_a_workflow_step_links_its_workflow_and_steps(superuser_client, worker):
    from taskito import chain

    flow = chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    worker.run_once()
    first, second = flow.refresh().jobs
    html = superuser_client.get(change_url("job", second.id)).content.decode()
    assert str(flow.id) in html and "running" in html
    assert change_url("job", first.id) in html and change_url("job", second.id) in html
    assert "this job" in html
    plain = superuser_client.get(change_url("job", tasks.noop.delay().id)).content.decode()
    assert "Not a workflow step." in plain
