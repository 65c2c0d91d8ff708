"""The taskito filters of the admin's lists answer a NUL in their value (`?queue=a%00b`),
which PostgreSQL refuses to compare, with an empty list, never a 500."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from taskito.admin.common import QueueFilter, TaskNameFilter
from taskito.admin.records import LevelFilter

pytestmark = pytest.mark.django_db

FILTERS = (QueueFilter, TaskNameFilter, LevelFilter)


def filtered_lists() -> list[tuple[str, str]]:
    """(changelist url, parameter) of every taskito list and each of its value filters."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "taskito":
            continue
        url = reverse(f"admin:taskito_{model._meta.model_name}_changelist")
        found += [(url, f.parameter_name) for f in model_admin.list_filter if f in FILTERS]
    return found


def test_every_value_filter_is_walked():
    assert {param for _, param in filtered_lists()} == {"queue", "task_name", "level"}
    assert len(filtered_lists()) == 8  # jobs, dead letters, errors, logs, metrics


@pytest.mark.parametrize("value", ["a\x00b", "\x00"])
def test_a_nul_in_a_filter_is_an_empty_list(superuser_client, dead_job, value):
    dead_job()  # a job, its error, its metric and its dead letter
    for url, param in filtered_lists():
        response = superuser_client.get(url, {param: value})
        assert response.status_code == 200, (url, param)
        assert response.context["cl"].result_count == 0, (url, param)


def test_the_filters_still_filter(superuser_client, dead_job):
    job = dead_job()
    for url, param in filtered_lists():
        if "tasklog" in url:
            continue  # a dead job logs nothing
        value = getattr(job.refresh(), param) if param != "queue" else "default"
        response = superuser_client.get(url, {param: value})
        assert response.context["cl"].result_count >= 1, (url, param, value)
