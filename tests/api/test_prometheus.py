"""taskito.contrib.prometheus: the scrape on Django and FastAPI, who may scrape, its query
budget, and the text parsed back with prometheus_client's own parser."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from taskito.models import Job
from tests.api.conftest import PREFIX, grant
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_metrics")]

TOKEN = "s3cret-scraper-token"
STATUSES = ("pending", "running", "completed", "failed", "dead", "cancelled")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted labels): value} of every sample of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def client_of(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def state(queue, engine, completed_job, dead_job):
    """Jobs in several states and queues, a paused queue, one live and one stale worker."""
    completed_job()
    dead_job()
    waiting = tasks.noop.apply_async(queue="mail")
    Job.objects.filter(id=waiting.id).update(scheduled_at=timezone.now() - timedelta(minutes=2))
    queue.pause("mail")
    now = timezone.now()
    for worker_id, seen in (("w-live", now), ("w-gone", now - timedelta(hours=1))):
        engine.heartbeat(worker_id=worker_id, hostname="h", pid=1, queues="mail",
                         concurrency=2, started_at=now - timedelta(hours=2), now=seen)


def test_staff_scrape_parses_with_the_right_series(state, staff):
    response = client_of(staff).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "private" in response["Cache-Control"]
    seen = samples(response.content.decode())
    for status in STATUSES:
        assert ("taskito_jobs", (("queue", "default"), ("status", status))) in seen
    assert seen[("taskito_jobs", (("queue", "default"), ("status", "completed")))] == 1
    assert seen[("taskito_jobs", (("queue", "default"), ("status", "dead")))] == 1
    assert seen[("taskito_jobs", (("queue", "mail"), ("status", "pending")))] == 1
    assert 120 <= seen[("taskito_queue_oldest_pending_seconds", (("queue", "mail"),))] < 180
    assert seen[("taskito_queue_oldest_pending_seconds", (("queue", "default"),))] == 0
    assert seen[("taskito_workers", (("queue", "mail"),))] == 1  # w-gone is stale
    assert seen[("taskito_workers", (("queue", "default"),))] == 0
    assert seen[("taskito_queue_paused", (("queue", "mail"),))] == 1
    assert seen[("taskito_queue_paused", (("queue", "default"),))] == 0
    assert seen[("taskito_dead_letters", ())] == 1


def test_openmetrics_when_the_scraper_asks(state, staff):
    response = client_of(staff).get(
        "/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


def scrape_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/metrics").status_code == 200
    return len(ctx.captured_queries)


def test_query_budget_does_not_grow_with_jobs_queues_or_workers(staff, engine,
                                                                django_assert_max_num_queries):
    client = client_of(staff)
    small = scrape_queries(client)
    now = timezone.now()
    for n in range(30):
        tasks.noop.apply_async(queue=f"q{n}")
        engine.heartbeat(worker_id=f"w{n}", hostname="h", pid=n, queues=f"q{n}",
                         concurrency=1, started_at=now, now=now)
    tasks.add.map([(i, i) for i in range(50)])
    assert scrape_queries(client) == small
    with django_assert_max_num_queries(10):  # session, user, permissions, the six reads
        client.get("/metrics")


# -- who may scrape ---------------------------------------------------------------------------
def test_anonymous_and_non_staff_are_refused(member, bare_staff):
    for user in (None, member, bare_staff):
        response = client_of(user).get("/metrics")
        assert response.status_code == 403, user
        assert "taskito_jobs" not in response.content.decode()


def test_staff_needs_the_view_job_permission(bare_staff):
    assert client_of(bare_staff).get("/metrics").status_code == 403
    assert client_of(grant(bare_staff, "view_job")).get("/metrics").status_code == 200


@override_settings(TASKITO={"METRICS_TOKEN": TOKEN})
def test_the_scrapers_bearer_token_is_let_in():
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "taskito_dead_letters" in response.content.decode()


@override_settings(TASKITO={"METRICS_TOKEN": TOKEN})
@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer x", f"Bearer {TOKEN[:-1]}"])
def test_a_wrong_token_is_401(header):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "taskito_jobs" not in response.content.decode()


def test_no_token_is_accepted_when_none_is_set():
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 401


def test_other_methods_are_405(staff):
    response = client_of(staff).post("/metrics")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_the_setting_must_be_text():
    from taskito.conf import taskito_settings
    from taskito.exceptions import ConfigurationError

    with override_settings(TASKITO={"METRICS_TOKEN": 123}), pytest.raises(ConfigurationError):
        _ = taskito_settings.METRICS_TOKEN


def test_a_missing_prometheus_client_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n.startswith("taskito.contrib.prometheus")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    for name in [n for n in sys.modules if n.startswith("prometheus_client.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImproperlyConfigured, match=r"taskito\[prometheus\]"):
        importlib.import_module("taskito.contrib.prometheus")


# -- FastAPI --------------------------------------------------------------------------------------
@pytest.fixture
def fastapi_metrics(queue: Any) -> Iterator[Callable[..., Any]]:
    """make(user=None) -> a TestClient of TaskitoRouter(metrics=True) behind
    django_session_auth, carrying the user's Django session cookie."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter, django_session_auth

    app = FastAPI()
    app.include_router(TaskitoRouter(queue, dependencies=[Depends(django_session_auth)],
                                     metrics=True), prefix=PREFIX)
    clients: list[Any] = []

    def make(user: User | None = None) -> Any:
        client = TestClient(app)
        if user is not None:
            session = client_of(user).cookies[settings.SESSION_COOKIE_NAME].value
            client.cookies.set(settings.SESSION_COOKIE_NAME, session)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed rows
def test_fastapi_scrape_matches_the_django_view(state, staff, fastapi_metrics):
    fast = fastapi_metrics(staff).get(f"{PREFIX}/metrics")
    assert fast.status_code == 200
    assert fast.headers["content-type"].startswith("text/plain; version=0.0.4")
    django = client_of(staff).get("/metrics")
    fast_samples, django_samples = samples(fast.text), samples(django.content.decode())
    oldest = "taskito_queue_oldest_pending_seconds"
    assert {k: v for k, v in fast_samples.items() if k[0] != oldest} == {
        k: v for k, v in django_samples.items() if k[0] != oldest}


@pytest.mark.django_db(transaction=True)
def test_fastapi_permissions(staff, member, bare_staff, fastapi_metrics):
    url = f"{PREFIX}/metrics"
    for user in (None, member, bare_staff):
        assert fastapi_metrics(user).get(url).status_code == 403, user
    assert fastapi_metrics(staff).get(url).status_code == 200
    assert fastapi_metrics(staff).post(url).status_code in (403, 405)  # CSRF first, or 405
    with override_settings(TASKITO={"METRICS_TOKEN": TOKEN}):
        anonymous = fastapi_metrics()
        ok = anonymous.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "taskito_jobs" in ok.text
        wrong = anonymous.get(url, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        # the token opens the scrape only, never the JSON routes
        stats = anonymous.get(f"{PREFIX}/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert stats.status_code == 403


def test_fastapi_router_without_metrics_has_no_route(queue):
    from taskito.contrib.fastapi import TaskitoRouter

    assert not [r for r in TaskitoRouter(queue).routes if "metrics" in r.path]
    paths = {r.path for r in TaskitoRouter(queue, metrics=True).routes}
    assert {"/metrics", "/metrics/"} <= paths
