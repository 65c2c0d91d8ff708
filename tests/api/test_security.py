"""The security walk: every URL of the REST and SSE includes (trailing-slash twins included)
and every route of the FastAPI router under `django_session_auth` refuse anonymous users,
non-staff users and staff without taskito's permissions, as the admin does; writes need the
admin action's permission; forged cross-site writes are refused on both surfaces."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils.crypto import get_random_string

from taskito.contrib.access import NOT_AUTHENTICATED, PERMISSIONS
from taskito.contrib.endpoints import ROUTES
from taskito.contrib.rest import urls
from taskito.contrib.sse import urls as sse_urls
from tests.api.conftest import OPERATOR_PERMISSIONS, PREFIX, grant
from tests.conftest import UNKNOWN_ID

pytestmark = pytest.mark.django_db

WRITES = {name for name, (method, _) in ROUTES.items() if method == "POST"}


def flat(patterns) -> list[URLPattern]:
    """The URL patterns of a URLconf, those of its includes too (same namespace, no prefix)."""
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            assert str(pattern.pattern) == "" and pattern.namespace is None
            found.extend(flat(pattern.url_patterns))
        else:
            assert isinstance(pattern, URLPattern)
            found.append(pattern)
    return found


def named_urls() -> list[tuple[str, str, str]]:
    """(route name, method, url) of every named URL of the two includes."""
    includes = (("taskito", urls.urlpatterns), ("taskito_sse", sse_urls.urlpatterns))
    found = []
    for namespace, pattern in [(ns, p) for ns, patterns in includes for p in flat(patterns)]:
        if pattern.name is None:
            continue  # a trailing-slash twin: walked below through its named original
        kwargs = {name: str(UNKNOWN_ID) for name in pattern.pattern.converters}
        url = reverse(f"{namespace}:{pattern.name}", kwargs=kwargs)
        found.append((pattern.name, ROUTES[pattern.name][0].lower(), url))
    return found


def every_url() -> list[tuple[str, str, str]]:
    return [(name, method, at) for name, method, url in named_urls() for at in (url, url + "/")]


def test_the_walk_covers_every_route():
    assert {name for name, _, _ in named_urls()} == set(ROUTES)
    assert len(every_url()) == 40  # 19 REST routes (the streams included), the SSE include,
    # each with and without a trailing slash


def client_of(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def call(client: Client, method: str, url: str, **extra: Any) -> Any:
    return getattr(client, method)(url, **extra)


def test_anonymous_is_refused_with_403_json():
    for _, method, url in every_url():
        response = call(Client(), method, url)
        assert response.status_code == 403, url
        assert response.json() == {"detail": NOT_AUTHENTICATED}, url
        assert response.headers["Content-Type"] == "application/json", url


def test_non_staff_is_refused(member):
    for _, method, url in every_url():
        assert call(client_of(member), method, url).status_code == 403, url


def test_non_staff_with_every_permission_is_refused(member):
    """The admin lets no one in who is not staff, whatever they hold: neither does the API."""
    client = client_of(grant(member, *OPERATOR_PERMISSIONS))
    for _, method, url in every_url():
        assert call(client, method, url).status_code == 403, url


def test_basic_auth_of_non_staff_is_refused(member):
    token = base64.b64encode(b"member:pw").decode()
    for _, method, url in every_url():
        response = call(Client(), method, url, HTTP_AUTHORIZATION=f"Basic {token}")
        assert response.status_code == 403, url


def test_staff_without_taskito_permissions_is_refused(bare_staff):
    client = client_of(bare_staff)
    for name, method, url in every_url():
        response = call(client, method, url)
        assert response.status_code == 403, url
        assert PERMISSIONS[name] in response.json()["detail"], url


def test_view_permissions_read_but_do_not_write(bare_staff):
    client = client_of(grant(bare_staff, "view_job", "view_deadletter"))
    for name, method, url in every_url():
        response = call(client, method, url)
        if name in WRITES:
            assert response.status_code == 403, url
            assert PERMISSIONS[name] in response.json()["detail"], url
        else:
            assert response.status_code in (200, 404, 501), (url, response.content)


def test_superusers_and_operators_pass(admin_user, staff):
    for client in (client_of(admin_user), client_of(staff)):
        for _, method, url in every_url():
            response = call(client, method, url)
            assert response.status_code in (200, 404, 501), url
            assert "private" in response.headers["Cache-Control"], url
            assert "Cookie" in response.headers["Vary"], url


@pytest.mark.parametrize("url", [url for name, _, url in every_url() if name in WRITES])
def test_drf_session_writes_need_the_csrf_token(staff, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post(url)
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    token = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    hostile = client.post(url, HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="http://evil.example")
    assert hostile.status_code == 403 and "Origin" in hostile.json()["detail"]
    own = client.post(url, HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="http://testserver")
    # past every check: the job or dead letter is unknown (requeue and revoke answer false/0)
    assert own.status_code == (200 if "/requeue" in url or "/revoke" in url else 404)


def test_posts_to_read_only_urls_are_json_405s(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    token = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    for name, _, url in every_url():
        if name in WRITES:
            continue
        response = client.post(url, HTTP_X_CSRFTOKEN=token)
        assert response.status_code == 405, url
        assert response.json()["detail"] == 'Method "POST" not allowed.', url


# -- FastAPI behind django_session_auth ---------------------------------------------------------
@pytest.fixture
def fastapi_session(queue: Any) -> Iterator[Callable[..., Any]]:
    """make(user=None) -> a TestClient of a router behind django_session_auth, carrying the
    user's Django session cookie."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter, django_session_auth

    app = FastAPI()
    app.include_router(TaskitoRouter(queue, dependencies=[Depends(django_session_auth)]),
                       prefix=PREFIX)
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


def fastapi_urls() -> list[tuple[str, str, str]]:
    ids = {"job_id": UNKNOWN_ID, "dead_id": UNKNOWN_ID, "workflow_id": UNKNOWN_ID,
           "task_name": "no.such.task"}
    return [(name, method, PREFIX + path.format(**ids) + end)
            for name, (method, path) in ROUTES.items() for end in ("", "/")]


def fastapi_call(client: Any, method: str, url: str, **kwargs: Any) -> Any:
    return client.request(method, url, **kwargs)


@pytest.mark.django_db(transaction=True)  # FastAPI's threads need committed users
def test_fastapi_session_auth_follows_the_admins_rules(fastapi_session, member, bare_staff):
    viewer = grant(User.objects.create_user("viewer", is_staff=True), "view_job",
                   "view_deadletter")
    operator = grant(User.objects.create_user("operator", is_staff=True),
                     *OPERATOR_PERMISSIONS)
    anonymous, plain, bare = fastapi_session(), fastapi_session(member), fastapi_session(
        bare_staff)
    reader, allowed = fastapi_session(viewer), fastapi_session(operator)
    token = get_random_string(32)
    for client in (plain, bare, reader, allowed):
        client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    csrf = {"X-CSRFToken": token}
    for name, method, url in fastapi_urls():
        refused = fastapi_call(anonymous, method, url)
        assert (refused.status_code, refused.json()) == (403, {"detail": NOT_AUTHENTICATED})
        assert fastapi_call(plain, method, url, headers=csrf).status_code == 403, url
        bare_answer = fastapi_call(bare, method, url, headers=csrf)
        assert bare_answer.status_code == 403 and PERMISSIONS[name] in bare_answer.json()[
            "detail"], url
        read = fastapi_call(reader, method, url, headers=csrf)
        assert read.status_code in ((403,) if name in WRITES else (200, 404)), url
        if name == "job_progress":
            continue  # a stream: its answers are compared in test_parity
        answer = fastapi_call(allowed, method, url, headers=csrf)
        assert answer.status_code in (200, 404), (url, answer.text)
        assert answer.headers["cache-control"].startswith("private")
        assert "Cookie" in answer.headers["vary"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("headers", "why"), [
    ({}, "CSRF cookie not set"),  # no token at all
    ({"cookie": True}, "CSRF token missing"),
    ({"cookie": True, "X-CSRFToken": "wrong" * 7}, "CSRF token"),
    ({"cookie": True, "token": True, "Origin": "http://evil.example"}, "Origin checking"),
    ({"cookie": True, "token": True, "Origin": "null"}, "Origin checking"),
    ({"cookie": True, "token": True, "Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ({"cookie": True, "token": True, "Sec-Fetch-Site": "same-site"}, "same-site"),
])
def test_fastapi_forged_writes_are_refused(fastapi_session, staff, queue, dead_job, headers,
                                           why):
    """A staff user's browser, sent by another page: every write endpoint refuses, and the
    job stays as it was."""
    from tests.testapp import tasks

    dead_job()
    [dead] = queue.dead_letters(limit=1)
    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    client = fastapi_session(staff)
    token = get_random_string(32)
    if headers.pop("cookie", False):
        client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    if headers.pop("token", False):
        headers["X-CSRFToken"] = token
    for url in (f"{PREFIX}/jobs/{job.id}/cancel", f"{PREFIX}/jobs/{job.id}/cancel/",
                f"{PREFIX}/dead-letters/{dead['id']}/retry",
                f"{PREFIX}/dead-letters/{dead['id']}/retry/"):
        response = client.post(url, headers=headers)
        assert response.status_code == 403, url
        assert response.json()["detail"].startswith("CSRF Failed:")
        assert why in response.json()["detail"], response.json()
    assert job.refresh().status == "pending"
    assert queue.dead_letters(limit=1) == [dead]  # not retried


@pytest.mark.django_db(transaction=True)
def test_fastapi_writes_from_the_site_itself_pass(fastapi_session, staff):
    from tests.testapp import tasks

    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    client = fastapi_session(staff)
    token = get_random_string(32)
    client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    response = client.post(f"{PREFIX}/jobs/{job.id}/cancel", headers={
        "X-CSRFToken": token, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert response.json() == {"cancelled": True}
    assert job.refresh().status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_anonymous_gets_the_same_answer_from_both_surfaces(fastapi_session):
    for name, method, url in fastapi_urls():
        drf = call(Client(), method.lower(), url)
        fast = fastapi_call(fastapi_session(), method, url)
        assert (drf.status_code, drf.json()) == (fast.status_code, fast.json()), name


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", ["multipart/form-data",  # no boundary
                                          "application/x-www-form-urlencoded"])
def test_fastapi_session_auth_never_parses_the_body(fastapi_session, staff, settings,
                                                   content_type):
    """The CSRF token comes from the header: a body Django could not parse (a multipart
    without boundary, more than DATA_UPLOAD_MAX_MEMORY_SIZE) is no 500 from the check."""
    from tests.testapp import tasks

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    client = fastapi_session(staff)
    token = get_random_string(32)
    client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    url = f"{PREFIX}/jobs/{job.id}/cancel"
    body = b"csrfmiddlewaretoken=" + token.encode() + b"&pad=" + b"x" * 100
    refused = client.post(url, content=body, headers={"Content-Type": content_type})
    assert refused.status_code == 403 and "CSRF token missing" in refused.json()["detail"]
    answer = client.post(url, content=body, headers={"Content-Type": content_type,
                                                     "X-CSRFToken": token})
    assert answer.json() == {"cancelled": True}


@pytest.mark.django_db(transaction=True)
def test_inactive_users_are_refused_on_both_surfaces(fastapi_session):
    user = grant(User.objects.create_superuser("gone", password="pw"), *OPERATOR_PERMISSIONS)
    drf, fast = client_of(user), fastapi_session(user)  # logged in, then deactivated
    User.objects.filter(pk=user.pk).update(is_active=False)
    token = get_random_string(32)
    fast.cookies.set(settings.CSRF_COOKIE_NAME, token)
    for _, method, url in fastapi_urls():
        assert call(drf, method.lower(), url).status_code == 403, url
        answer = fastapi_call(fast, method, url, headers={"X-CSRFToken": token})
        assert (answer.status_code, answer.json()) == (403, {"detail": NOT_AUTHENTICATED}), url


@pytest.mark.django_db(transaction=True)
def test_fastapi_session_auth_lets_superusers_do_everything(fastapi_session, admin_user,
                                                            queue, dead_job):
    from tests.testapp import tasks

    dead_job()
    [dead] = queue.dead_letters(limit=1)
    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    client = fastapi_session(admin_user)  # no permission of its own: is_superuser holds all
    token = get_random_string(32)
    client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    for name, method, url in fastapi_urls():
        if name != "job_progress":
            answer = fastapi_call(client, method, url, headers={"X-CSRFToken": token})
            assert answer.status_code in (200, 404), (url, answer.text)
    csrf = {"X-CSRFToken": token}
    assert client.post(f"{PREFIX}/jobs/{job.id}/cancel", headers=csrf).json() == {
        "cancelled": True}
    retried = client.post(f"{PREFIX}/dead-letters/{dead['id']}/retry", headers=csrf)
    assert retried.status_code == 200 and "new_job_id" in retried.json()


@pytest.mark.django_db(transaction=True)
def test_fastapi_bearer_token_dependency_posts_without_csrf(queue):
    """Bearer tokens are not sent by browsers on their own: no CSRF check is needed, and the
    router adds none of its own."""
    from fastapi import Depends, FastAPI, Header, HTTPException
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter
    from tests.testapp import tasks

    def bearer(authorization: str = Header("")) -> None:
        if authorization != "Bearer s3cret":
            raise HTTPException(status_code=401, detail="Bad token.")

    app = FastAPI()
    app.include_router(TaskitoRouter(queue, dependencies=[Depends(bearer)]), prefix=PREFIX)
    job = tasks.add.apply_async(args=(1, 2), delay=3600)
    url = f"{PREFIX}/jobs/{job.id}/cancel"
    with TestClient(app) as client:
        assert client.post(url).status_code == 401
        assert client.post(url, headers={"Authorization": "Bearer s3cret"}).json() == {
            "cancelled": True}
    assert job.refresh().status == "cancelled"
