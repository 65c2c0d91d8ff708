"""Huge, negative or garbage page numbers on every taskito changelist are answered as
Django's own lists answer them (the user list here), never with a 500."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from taskito.admin.common import MAX_PAGE_HINT, CappedPaginator

pytestmark = pytest.mark.django_db

PAGES = ["9223372036854775808", "9223372036854775807", str(10**30), "-9223372036854775809",
         str(MAX_PAGE_HINT + 1), "2", "0", "x"]


def taskito_changelists() -> list[str]:
    return [reverse(f"admin:taskito_{model._meta.model_name}_changelist")
            for model in admin.site._registry if model._meta.app_label == "taskito"]


def test_every_taskito_list_is_walked():
    assert len(taskito_changelists()) == 7


@pytest.mark.parametrize("page", PAGES)
def test_page_numbers_are_answered_like_djangos_own_lists(superuser_client, page, dead_job):
    dead_job()  # a job, an error and a dead letter: lists with one row
    django_own = superuser_client.get(reverse("admin:auth_user_changelist"), {"p": page})
    assert django_own.status_code < 500
    for url in taskito_changelists():
        response = superuser_client.get(url, {"p": page})
        assert response.status_code == django_own.status_code, url
        if response.status_code == 302:
            assert response.url == django_own.url.replace(
                reverse("admin:auth_user_changelist"), url)


def test_the_count_looks_ahead_of_a_capped_page_hint(dead_job):
    from taskito.models import Job

    dead_job()
    paginator = CappedPaginator(Job.objects.all(), 50, page_hint=2**63)
    assert paginator.page_hint == MAX_PAGE_HINT
    assert paginator.count == 1 and not paginator.capped
