"""Every URL the REST and SSE includes add refuses anonymous and non-staff users."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from taskito.contrib.rest import urls
from taskito.contrib.sse import urls as sse_urls

pytestmark = pytest.mark.django_db


def every_url() -> list[tuple[str, str]]:
    includes = (("taskito", urls.urlpatterns), ("taskito_sse", sse_urls.urlpatterns))
    found = []
    for namespace, pattern in [(ns, p) for ns, patterns in includes for p in patterns]:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: str(uuid.uuid4()) for name in pattern.pattern.converters}
        url = reverse(f"{namespace}:{pattern.name}", kwargs=kwargs)
        method = "post" if url.endswith(("/cancel", "/retry")) else "get"
        found.append((method, url))
    return found


def test_the_walk_covers_every_route():
    assert len(every_url()) == 14  # 13 REST routes (the stream included), the SSE include


@pytest.mark.parametrize(("method", "url"), every_url())
def test_anonymous_is_refused(method, url):
    response = getattr(Client(), method)(url)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


@pytest.mark.parametrize(("method", "url"), every_url())
def test_non_staff_is_refused(member, method, url):
    client = Client()
    client.force_login(member)
    response = getattr(client, method)(url)
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "url"), every_url())
def test_basic_auth_of_non_staff_is_refused(member, method, url):
    import base64

    token = base64.b64encode(b"member:pw").decode()
    response = getattr(Client(), method)(url, HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 403


def test_session_post_needs_csrf(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post(f"/tasks/jobs/{uuid.uuid4()}/cancel")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
