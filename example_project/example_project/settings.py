"""Settings for the taskito example project (development only: DEBUG on, SQLite)."""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

# Development only: never use this key or DEBUG = True in production.
SECRET_KEY = "django-insecure-taskito-example-project-not-for-production"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "taskito",
    "taskito.contrib.sse",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # TASKITO_EXAMPLE_DB points the project at another file (the browser test uses one).
        "NAME": os.environ.get("TASKITO_EXAMPLE_DB", BASE_DIR / "db.sqlite3"),
        # Web requests and the worker write to the same file: take the write lock at the
        # start of each transaction instead of failing with "database is locked" later
        # (what taskito's check taskito.W001 recommends).
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }
}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []  # the demo superuser is admin/admin

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

if django.VERSION >= (6, 0):
    # Django's Content Security Policy (new in 6.0): scripts and styles only from files (or
    # nonced), so an inline script or style attribute is blocked (and shows up as a console
    # error).
    from django.utils.csp import CSP

    MIDDLEWARE.insert(1, "django.middleware.csp.ContentSecurityPolicyMiddleware")
    TEMPLATES[0]["OPTIONS"]["context_processors"].append(  # type: ignore[index]
        "django.template.context_processors.csp")
    SECURE_CSP = {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF, CSP.NONCE],
        "style-src": [CSP.SELF, CSP.NONCE],
        "img-src": [CSP.SELF, "data:"],
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKITO = {"DEFAULT_QUEUE": "default"}

# The DRF API's OpenAPI schema (served at /tasks/schema) through drf-spectacular.
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"TITLE": "taskito example", "SERVE_INCLUDE_SCHEMA": False}
