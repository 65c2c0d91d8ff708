"""The admin pages on every supported Django: `{% taskito_nonce_attr %}` adds a CSP nonce where
the running Django has one (6.0+ with its CSP middleware) and nothing elsewhere (5.2)."""

from __future__ import annotations

import re

import django
import pytest
from django import forms
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.urls import reverse

from tests.admin.conftest import changelist_url

pytestmark = pytest.mark.django_db

HAS_CSP = django.VERSION >= (6, 0)
needs_csp = pytest.mark.skipif(not HAS_CSP, reason="Django's CSP support is new in 6.0")

TAG = Template("{% load taskito_csp %}<script {% taskito_nonce_attr %}></script>")
MEDIA_TAG = Template("{% load taskito_csp %}{% taskito_nonce_attr media %}")
MEDIA = forms.Media(js=["a.js"], css={"all": ["a.css"]})


def csp_settings():
    """Django's CSP middleware with a nonce in script-src and style-src."""
    from django.utils.csp import CSP  # Django 6.0+

    return override_settings(
        MIDDLEWARE=[*django.conf.settings.MIDDLEWARE,
                    "django.middleware.csp.ContentSecurityPolicyMiddleware"],
        SECURE_CSP={"default-src": [CSP.SELF], "script-src": [CSP.SELF, CSP.NONCE],
                    "style-src": [CSP.SELF, CSP.NONCE]})


def test_no_nonce_renders_no_attribute():
    assert TAG.render(Context({})) == "<script ></script>"


def test_the_context_processors_nonce_is_rendered_escaped():
    html = TAG.render(Context({"csp_nonce": 'n"1'}))
    assert html == '<script nonce="n&quot;1"></script>'


def test_media_renders_its_tags_with_or_without_a_nonce():
    plain = MEDIA_TAG.render(Context({"media": MEDIA}))
    assert 'src="/static/a.js"' in plain and 'href="/static/a.css"' in plain
    assert "nonce" not in plain
    with_nonce = MEDIA_TAG.render(Context({"media": MEDIA, "csp_nonce": "n1"}))
    assert 'src="/static/a.js"' in with_nonce
    if django.VERSION >= (6, 1):  # older Media.render() takes no attributes
        assert with_nonce.count('nonce="n1"') == 2


@needs_csp
def test_the_requests_nonce_is_used_without_the_context_processor():
    from django.middleware.csp import ContentSecurityPolicyMiddleware

    request = RequestFactory().get("/")
    ContentSecurityPolicyMiddleware(lambda r: None).process_request(request)
    html = TAG.render(Context({"request": request}))
    assert re.fullmatch(r'<script nonce="[\w-]{16,}"></script>', html), html


@pytest.mark.parametrize("url", [
    reverse("admin:app_list", args=["taskito"]),
    reverse("admin:taskito_dashboard"),
    changelist_url("job"),
])
def test_admin_pages_render_on_this_django(superuser_client, url):
    response = superuser_client.get(url)
    assert response.status_code == 200
    assert "taskito/admin/admin.css" in response.content.decode()


def test_delete_confirmation_renders_on_this_django(superuser_client, dead_letter):
    letter = dead_letter()
    response = superuser_client.post(changelist_url("deadletter"), {
        "action": "delete_dead_letters", "_selected_action": [str(letter.pk)], "index": "0"})
    assert response.status_code == 200
    assert "admin/js/cancel.js" in response.content.decode()


@needs_csp
@pytest.mark.parametrize("url", [reverse("admin:app_list", args=["taskito"]),
                                 reverse("admin:taskito_dashboard")])
def test_taskito_files_carry_the_nonce_of_the_csp_header(superuser_client, url):
    with csp_settings():
        response = superuser_client.get(url)
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    html = response.content.decode()
    tags = re.findall(r"<(?:link|script)\b[^>]*taskito/admin/[^>]*>", html)
    assert tags
    assert all(f'nonce="{nonce}"' in tag for tag in tags), tags
