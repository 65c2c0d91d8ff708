"""``{% taskito_nonce_attr %}``: a CSP nonce attribute on every supported Django.

Django 6.1's ``{% csp_nonce_attr %}`` does not exist on 5.2 or 6.0, so the admin templates use
this tag instead. It renders ``nonce="..."`` when the request carries a nonce (Django 6.0+ with
``ContentSecurityPolicyMiddleware``) and nothing otherwise; with a ``Media`` argument it renders
the media's tags, each with the nonce where the running Django can add it.
"""

from __future__ import annotations

import inspect
from typing import Any

from django import template
from django.forms import Media
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

CONTEXT_KEY = "csp_nonce"  # what Django's ``csp`` context processor sets


def request_nonce(context: template.Context) -> Any:
    """The request's CSP nonce, or None when it has none (or Django has no CSP support)."""
    nonce = context.get(CONTEXT_KEY)
    request = context.get("request")
    if nonce is None and request is not None:
        try:  # Django 6.0+: set by ContentSecurityPolicyMiddleware
            from django.middleware.csp import get_nonce
        except ImportError:  # Django 5.2 has no CSP support, so never a nonce
            return None
        nonce = get_nonce(request)
    return nonce


def _media_takes_attrs(media: Media) -> bool:
    return "attrs" in inspect.signature(media.render).parameters


@register.simple_tag(takes_context=True)
def taskito_nonce_attr(context: template.Context, media: Media | None = None) -> SafeString:
    """``nonce="..."`` for a ``<script>``/``<link>`` tag, or ``media`` rendered with it."""
    nonce = request_nonce(context)
    if media is not None:
        if nonce is not None and _media_takes_attrs(media):  # Django 6.1+
            return mark_safe(media.render(attrs={"nonce": nonce}))
        return mark_safe(media.render())
    if nonce is None:
        return mark_safe("")
    return format_html('nonce="{}"', nonce)
