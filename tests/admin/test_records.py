"""Read-only admins for job errors, task logs and task metrics."""

from __future__ import annotations

import pytest
from django.urls import reverse

from taskito.models import JobError, TaskLog, TaskMetric
from tests.admin.conftest import action_names, change_url, changelist_url
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

RECORDS = ("joberror", "tasklog", "taskmetric")


@pytest.fixture
def records(worker):
    """Jobs that leave an error, log lines and metrics; returns two of them."""
    logged = tasks.logs_extra.apply_async(args=("look here", {"k": "v"}))
    tasks.fatal.delay()
    tasks.fatal.delay()  # two jobs of each kind of row, so a filter has one to leave out
    quiet = tasks.reports.delay(2)
    worker.run_until_empty()
    return logged, quiet


@pytest.mark.parametrize(("model", "row"), [("joberror", JobError), ("tasklog", TaskLog),
                                            ("taskmetric", TaskMetric)])
def test_list_is_read_only(superuser_client, records, model, row):
    response = superuser_client.get(changelist_url(model))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == row.objects.count() >= 2
    assert action_names(response) == []  # no delete_selected either
    assert superuser_client.get(reverse(f"admin:taskito_{model}_add")).status_code == 403


@pytest.mark.parametrize(("model", "row"), [("joberror", JobError), ("tasklog", TaskLog),
                                            ("taskmetric", TaskMetric)])
def test_row_page_is_read_only(superuser_client, records, model, row):
    pk = row.objects.first().pk
    response = superuser_client.get(change_url(model, pk))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert superuser_client.post(change_url(model, pk), {}).status_code == 403
    delete_url = reverse(f"admin:taskito_{model}_delete", args=[pk])
    assert superuser_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert row.objects.filter(pk=pk).exists()


@pytest.mark.parametrize(("model", "row"), [("joberror", JobError), ("tasklog", TaskLog),
                                            ("taskmetric", TaskMetric)])
def test_filter_and_search_by_job(superuser_client, records, model, row):
    # every job of `records` that left rows of this kind: the filter must pick one job's rows
    jobs = sorted({r.job_id for r in row.objects.all()}, key=str)
    assert jobs, f"the records fixture left no {model} rows"
    job_id = jobs[-1]
    expected = set(row.objects.filter(job_id=job_id).values_list("pk", flat=True))
    assert row.objects.exclude(job_id=job_id).exists()
    for params in ({"job": str(job_id)}, {"q": str(job_id)}):
        response = superuser_client.get(changelist_url(model), params)
        assert {r.pk for r in response.context["cl"].result_list} == expected, params
    response = superuser_client.get(changelist_url(model), {"job": "not-an-id"})
    assert list(response.context["cl"].result_list) == []


def test_log_search_by_message_and_level_filter(superuser_client, records):
    response = superuser_client.get(changelist_url("tasklog"), {"q": "look here"})
    assert {r.message for r in response.context["cl"].result_list} == {"look here"}
    response = superuser_client.get(changelist_url("tasklog"), {"level": "warning"})
    assert {r.level for r in response.context["cl"].result_list} == {"warning"}


def test_error_page_shows_the_traceback(superuser_client, worker):
    tasks.fatal.delay()
    worker.run_until_empty()
    error = JobError.objects.get()
    html = superuser_client.get(change_url("joberror", error.pk)).content.decode()
    assert "Traceback" in html and "not worth retrying" in html


@pytest.mark.parametrize("model", RECORDS)
def test_view_only_user_can_read(viewer_client, records, model):
    response = viewer_client.get(changelist_url(model))
    assert response.status_code == 200
    assert action_names(response) == []


@pytest.mark.parametrize("model", RECORDS)
def test_query_count_does_not_grow_with_the_page(superuser_client, worker, model,
                                                 django_assert_max_num_queries):
    tasks.reports.delay(1)
    worker.run_until_empty()
    with django_assert_max_num_queries(8):
        superuser_client.get(changelist_url(model))
    tasks.reports.map([(3,) for _ in range(20)])
    tasks.fatal.map([() for _ in range(20)])
    worker.run_until_empty()
    with django_assert_max_num_queries(8):
        superuser_client.get(changelist_url(model))
