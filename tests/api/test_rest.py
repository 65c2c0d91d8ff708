"""The DRF views, one behaviour per test (as staff; permissions are in test_security)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from taskito import chain
from taskito.models import Job, WorkerHeartbeat
from tests.api.conftest import PREFIX
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def get(api: Client, path: str, **params: object):
    return api.get(PREFIX + path, params)


def test_stats_counts_jobs_by_status(api, make_jobs):
    make_jobs()
    response = get(api, "/stats")
    assert response.status_code == 200
    assert response.json() == {"pending": 1, "running": 1, "completed": 1, "failed": 0,
                               "dead": 1, "cancelled": 0}


def test_stats_queues_groups_by_queue(api, make_jobs):
    make_jobs()
    body = get(api, "/stats/queues").json()
    assert set(body) == {"default", "later", "claimed"}
    assert body["later"]["pending"] == 1 and body["claimed"]["running"] == 1


def test_jobs_lists_newest_first_with_the_job_shape(api, make_jobs):
    jobs = make_jobs()
    body = get(api, "/jobs").json()
    assert [j["id"] for j in body] == [str(jobs.running.id), str(jobs.pending.id),
                                       str(jobs.dead.id), str(jobs.completed.id)]
    assert body[-1] == jobs.completed.refresh().to_dict()
    assert set(body[0]) == {"id", "queue", "task_name", "status", "priority", "progress",
                            "retry_count", "max_retries", "created_at", "scheduled_at",
                            "started_at", "completed_at", "error", "timeout_ms", "unique_key",
                            "metadata"}


def test_jobs_filters_by_status_queue_and_task_name(api, make_jobs):
    jobs = make_jobs()
    assert [j["id"] for j in get(api, "/jobs", status="completed").json()] == [
        str(jobs.completed.id)]
    assert [j["id"] for j in get(api, "/jobs", queue="later").json()] == [str(jobs.pending.id)]
    assert [j["id"] for j in get(api, "/jobs", task_name=tasks.fatal.name).json()] == [
        str(jobs.dead.id)]


def test_jobs_paginates_with_limit_and_offset(api, make_jobs):
    jobs = make_jobs()
    body = get(api, "/jobs", limit=2, offset=1).json()
    assert [j["id"] for j in body] == [str(jobs.pending.id), str(jobs.dead.id)]


@pytest.mark.parametrize(("params", "name"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": "1.5"}, "offset"), ({"status": "bogus"}, "status"),
])
def test_jobs_bad_parameter_is_400_naming_it(api, params, name):
    response = get(api, "/jobs", **params)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{name} must be")


def test_job_detail_and_404s(api, make_jobs):
    jobs = make_jobs()
    assert get(api, f"/jobs/{jobs.pending.id}").json()["status"] == "pending"
    for bad in (uuid.uuid4(), "not-a-uuid"):
        response = get(api, f"/jobs/{bad}")
        assert response.status_code == 404
        assert response.json() == {"detail": f"job {bad} not found"}


def test_workflow_detail_and_404s(api, worker):
    flow = chain(tasks.add.s(1, 2), tasks.mul.s(2)).apply_async()
    worker.run_once()
    body = get(api, f"/workflows/{flow.id}").json()
    steps = flow.refresh().jobs
    assert body == {"id": str(flow.id), "status": "running", "result": None, "steps": [
        {"job_id": str(steps[0].id), "task_name": tasks.add.name, "status": "complete"},
        {"job_id": str(steps[1].id), "task_name": tasks.mul.name, "status": "pending"}]}
    worker.run_until_empty()
    body = get(api, f"/workflows/{flow.id}").json()
    assert (body["status"], body["result"]) == ("complete", 6)
    for bad in (uuid.uuid4(), "not-a-uuid"):
        response = get(api, f"/workflows/{bad}")
        assert response.status_code == 404
        assert response.json() == {"detail": f"workflow {bad} not found"}


def test_job_errors_and_logs(api, make_jobs):
    jobs = make_jobs()
    errors = get(api, f"/jobs/{jobs.dead.id}/errors").json()
    assert [(e["attempt"], e["job_id"]) for e in errors] == [(1, str(jobs.dead.id))]
    logs = get(api, f"/jobs/{jobs.completed.id}/logs").json()
    assert [(log["message"], log["extra"]) for log in logs] == [
        ("step 1", {"i": 0}), ("step 2", {"i": 1})]
    assert get(api, f"/jobs/{uuid.uuid4()}/errors").status_code == 404
    assert get(api, "/jobs/nope/logs").status_code == 404


def test_cancel_pending_running_and_finished(api, make_jobs):
    def row(job):
        return Job.objects.get(id=job.id)

    jobs = make_jobs()
    assert api.post(f"{PREFIX}/jobs/{jobs.pending.id}/cancel").json() == {"cancelled": True}
    assert row(jobs.pending).status == 5
    assert api.post(f"{PREFIX}/jobs/{jobs.running.id}/cancel").json() == {"cancelled": True}
    assert row(jobs.running).cancel_requested is True
    assert api.post(f"{PREFIX}/jobs/{jobs.completed.id}/cancel").json() == {"cancelled": False}
    assert api.post(f"{PREFIX}/jobs/{uuid.uuid4()}/cancel").status_code == 404


def test_cancel_is_post_only(api, make_jobs):
    jobs = make_jobs()
    assert get(api, f"/jobs/{jobs.pending.id}/cancel").status_code == 405


def test_dead_letters_list_and_retry(api, make_jobs, queue):
    jobs = make_jobs()
    letters = get(api, "/dead-letters").json()
    assert [d["original_job_id"] for d in letters] == [str(jobs.dead.id)]
    response = api.post(f"{PREFIX}/dead-letters/{letters[0]['id']}/retry")
    assert response.status_code == 200
    new_id = response.json()["new_job_id"]
    assert Job.objects.get(id=new_id).task_name == tasks.fatal.name
    assert get(api, "/dead-letters").json() == []
    again = api.post(f"{PREFIX}/dead-letters/{letters[0]['id']}/retry")
    assert again.status_code == 404 and "not found" in again.json()["detail"]
    assert api.post(f"{PREFIX}/dead-letters/garbage/retry").status_code == 404


def test_dead_letters_answer_every_field(api, queue, worker):
    job = tasks.fatal.apply_async(queue="fragile", metadata={"user": 7})
    worker.run_until_empty()
    (letter,) = get(api, "/dead-letters").json()
    assert set(letter) == {"id", "original_job_id", "queue", "task_name", "error",
                           "retry_count", "failed_at", "metadata"}
    assert (letter["original_job_id"], letter["queue"], letter["task_name"],
            letter["metadata"]) == (str(job.id), "fragile", tasks.fatal.name, {"user": 7})


def test_dead_letters_bad_paging_is_400(api):
    assert get(api, "/dead-letters", limit=1000).status_code == 400
    assert get(api, "/dead-letters", offset=-3).json()["detail"].startswith("offset")


def test_health_and_readiness(api):
    assert get(api, "/health").json() == {"status": "ok"}
    assert get(api, "/readiness").json() == {"status": "ready", "storage": True, "workers": 0}
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", hostname="h", pid=1, concurrency=1,
                                   started_at=now, last_seen=now)
    WorkerHeartbeat.objects.create(worker_id="w2", hostname="h", pid=2, concurrency=1,
                                   started_at=now, last_seen=now - timedelta(hours=1))
    assert get(api, "/readiness").json()["workers"] == 1


@pytest.mark.django_db(transaction=True)
def test_result_answers_at_once_without_timeout(api, make_jobs):
    jobs = make_jobs()
    assert get(api, f"/jobs/{jobs.completed.id}/result").json() == {
        "id": str(jobs.completed.id), "status": "complete", "result": "done", "error": None}
    body = get(api, f"/jobs/{jobs.pending.id}/result").json()
    assert body == {"id": str(jobs.pending.id), "status": "pending", "result": None,
                    "error": None}
    dead = get(api, f"/jobs/{jobs.dead.id}/result").json()
    assert dead["status"] == "dead" and dead["result"] is None and "Fatal" in dead["error"]


@pytest.mark.parametrize("timeout", ["-1", "301", "abc", "nan", "inf"])
def test_result_bad_timeout_is_400(api, timeout):
    response = get(api, f"/jobs/{uuid.uuid4()}/result", timeout=timeout)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("timeout must be")


def test_result_unknown_job_is_404(api):
    assert get(api, f"/jobs/{uuid.uuid4()}/result", timeout=1).status_code == 404
    assert get(api, "/jobs/x/result").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_result_waits_then_answers_current_status(api, make_jobs):
    jobs = make_jobs()
    body = get(api, f"/jobs/{jobs.pending.id}/result", timeout="0.2").json()
    assert body == {"id": str(jobs.pending.id), "status": "pending", "result": None,
                    "error": None}


@pytest.mark.django_db(transaction=True)
def test_result_returns_when_the_job_finishes(api, queue, worker):
    import threading

    job = tasks.add.delay(2, 3)
    ran = threading.Event()

    def finish() -> None:
        from django.db import connection

        try:
            worker.run_until_empty()
        finally:
            connection.close()
            ran.set()

    threading.Thread(target=finish).start()
    body = get(api, f"/jobs/{job.id}/result", timeout=30).json()
    assert ran.wait(30)
    assert body == {"id": str(job.id), "status": "complete", "result": 5, "error": None}


@override_settings(TASKITO={"REST_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]})
def test_permission_classes_come_from_settings(make_jobs):
    make_jobs()
    assert Client().get(f"{PREFIX}/stats").status_code == 200


@pytest.fixture
def unreachable_alias(tmp_path, settings):
    """TASKITO["DATABASE"] names an alias whose database cannot be opened."""
    from django.db import connections

    broken = dict(connections.settings["default"])
    if connections["default"].vendor == "sqlite":
        broken["NAME"] = str(tmp_path / "no-such-dir" / "jobs.sqlite3")
    else:
        broken["NAME"] = broken["TEST"]["NAME"] = "taskito_no_such_database"
    connections.settings["unreachable"] = broken
    try:
        with override_settings(TASKITO={**settings.TASKITO, "DATABASE": "unreachable"}):
            yield
    finally:
        connections["unreachable"].close()
        del connections["unreachable"]
        del connections.settings["unreachable"]


def test_readiness_is_503_when_the_job_tables_cannot_be_read(api, fastapi_client,
                                                             unreachable_alias):
    unavailable = {"status": "unavailable", "storage": False, "workers": None}
    response = get(api, "/readiness")
    assert (response.status_code, response.json()) == (503, unavailable)
    response = fastapi_client.get(PREFIX + "/readiness")
    assert (response.status_code, response.json()) == (503, unavailable)
    assert get(api, "/health").status_code == 200  # liveness does not touch the database
