"""TASKITO["HEALTH_PUBLIC"]: GET /health answers probes that carry no credentials, on DRF and
on FastAPI behind django_session_auth, without a query; off by default, and nothing else
opens with it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from taskito.contrib.access import NOT_AUTHENTICATED
from taskito.exceptions import ConfigurationError
from tests.api.conftest import PREFIX

pytestmark = pytest.mark.django_db

PUBLIC = override_settings(TASKITO={"HEALTH_PUBLIC": True})
BAD_BASIC = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"nobody:wrong").decode()}


def _urls(name: str) -> list[str]:
    url = reverse(f"taskito:{name}")
    return [url, url + "/"]


def test_drf_health_needs_a_staff_user_by_default():
    for url in _urls("health"):
        response = Client().get(url)
        assert (response.status_code, response.json()) == (403, {"detail": NOT_AUTHENTICATED})


@PUBLIC
def test_drf_health_answers_anyone_without_a_query(django_assert_num_queries):
    for url in _urls("health"):
        with django_assert_num_queries(0):
            response = Client().get(url, **BAD_BASIC)  # credentials are not even read
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


@PUBLIC
def test_drf_public_health_opens_nothing_else():
    for url in _urls("readiness") + _urls("stats"):
        assert Client().get(url).status_code == 403, url


@pytest.fixture
def session_app(queue: Any) -> Iterator[Any]:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter, django_session_auth

    app = FastAPI()
    app.include_router(TaskitoRouter(queue, dependencies=[Depends(django_session_auth)]),
                       prefix=PREFIX)
    with TestClient(app) as client:
        yield client


@pytest.mark.django_db(transaction=True)
def test_fastapi_health_needs_a_staff_user_by_default(session_app):
    for url in (f"{PREFIX}/health", f"{PREFIX}/health/"):
        response = session_app.get(url)
        assert (response.status_code, response.json()) == (403, {"detail": NOT_AUTHENTICATED})


@pytest.mark.django_db(transaction=True)
@PUBLIC
def test_fastapi_health_answers_anyone_without_a_query(session_app,
                                                       django_assert_num_queries):
    for url in (f"{PREFIX}/health", f"{PREFIX}/health/"):
        with django_assert_num_queries(0):
            response = session_app.get(url)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
    for url in (f"{PREFIX}/readiness", f"{PREFIX}/stats"):
        assert session_app.get(url).status_code == 403, url


def test_health_public_must_be_a_boolean(settings):
    from taskito.conf import taskito_settings

    settings.TASKITO = {"HEALTH_PUBLIC": "yes"}
    with pytest.raises(ConfigurationError, match="HEALTH_PUBLIC"):
        taskito_settings.get("HEALTH_PUBLIC")
