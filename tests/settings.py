"""Settings for taskito's own tests: a SQLite file (threads and worker subprocesses share it),
or PostgreSQL when TASKITO_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent
RUN_DIR = Path(os.environ.get("TASKITO_TEST_DIR", BASE_DIR.parent / "test-output"))
RUN_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "taskito-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

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
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"

if os.environ.get("TASKITO_TEST_OTEL_SPANS"):
    # worker subprocesses of the tracing tests export their spans to this file (tests/contrib)
    from tests.helpers.otel import install_file_exporter

    install_file_exporter(os.environ["TASKITO_TEST_OTEL_SPANS"])

if os.environ.get("TASKITO_TEST_EVENTSTREAM_REDIS"):
    # django-eventstream carries events between processes through Redis (tests/sse)
    EVENTSTREAM_REDIS = json.loads(os.environ["TASKITO_TEST_EVENTSTREAM_REDIS"])
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"


def _database(suffix: str = "", *, direct: bool = False) -> dict[str, object]:
    url = os.environ.get("TASKITO_TEST_DATABASE_URL")
    if not url:
        name = str(RUN_DIR / f"taskito-test{suffix}-"
                             f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.sqlite3")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "TEST": {"NAME": name},
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    parsed = urlparse(url)
    # the name of the test database (TASKITO_TEST_PG_NAME: named when PostgreSQL was the only
    # server; it names the MariaDB/MySQL test database too)
    test_name = os.environ.get("TASKITO_TEST_PG_NAME", "taskito_test") + suffix.replace("-", "_")
    # A worker subprocess started by a test connects straight to the test database.
    in_child = os.environ.get("TASKITO_TEST_CHILD") == "1"
    mysql = parsed.scheme in ("mysql", "mariadb")
    return {
        "ENGINE": "django.db.backends.mysql" if mysql else "django.db.backends.postgresql",
        "NAME": test_name if in_child else (parsed.path.lstrip("/")
                                            or ("test" if mysql else "postgres")),
        "USER": parsed.username or ("root" if mysql else "postgres"),
        "PASSWORD": parsed.password or "",
        # TASKITO_TEST_DB_HOST / _PORT: connect through something else (a PgBouncer or a
        # forwarder a test started); a `direct` alias keeps the URL's
        "HOST": ((None if direct else os.environ.get("TASKITO_TEST_DB_HOST"))
                 or parsed.hostname or "127.0.0.1"),
        "PORT": str((None if direct else os.environ.get("TASKITO_TEST_DB_PORT"))
                    or parsed.port or (3306 if mysql else 5432)),
        "TEST": {"NAME": test_name, **({"CHARSET": "utf8mb4"} if mysql else {})},
        # TASKITO_TEST_MYSQL_ISOLATION="repeatable read" runs the suite under InnoDB's own
        # default instead of Django's (expect taskito.W002 from the checks then)
        **({"OPTIONS": {"charset": "utf8mb4", "isolation_level": os.environ.get(
            "TASKITO_TEST_MYSQL_ISOLATION", "read committed")}} if mysql else {}),
        # TASKITO_TEST_APP_NAME: a worker's connections, told apart in pg_stat_activity
        **({"OPTIONS": {"application_name": os.environ["TASKITO_TEST_APP_NAME"]}}
           if not mysql and os.environ.get("TASKITO_TEST_APP_NAME") else {}),
        # Worker subprocesses keep their task threads' connections between jobs, as the
        # README advises for workers whose tasks use the database.
        "CONN_MAX_AGE": 60 if in_child else 0,
    }


# "jobs": a second database of the same kind, for the tests of TASKITO["DATABASE"] and
# Queue(using=...) (tests/core/test_separate_database.py); only tests that ask for it use it.
DATABASES = {"default": _database(), "jobs": _database("-jobs")}
_PG = "postgresql" in str(DATABASES["default"]["ENGINE"])
if os.environ.get("TASKITO_TEST_PG_OPTIONS") and _PG:
    # TASKITO_TEST_PG_OPTIONS='{"server_side_binding": true, "prepare_threshold": 5}': the
    # suite on psycopg's server-side binding and prepared statements (README, "Speed")
    for _settings in DATABASES.values():
        _settings["OPTIONS"] = {**dict(_settings.get("OPTIONS") or {}),  # type: ignore[call-overload]
                                **json.loads(os.environ["TASKITO_TEST_PG_OPTIONS"])}
if os.environ.get("TASKITO_TEST_DIRECT_ALIAS"):
    # an alias to the default test database that bypasses TASKITO_TEST_DB_PORT's pooler
    # (for TASKITO["LISTEN_DATABASE"])
    DATABASES[os.environ["TASKITO_TEST_DIRECT_ALIAS"]] = _database(direct=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Django's default PBKDF2 takes most of a second per login on this machine: the security test
# that tries HTTP Basic auth on every route spent ~20 s of each run hashing (as Django's
# testing docs advise, a fast hasher; no test is about the hash itself)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

TASKITO = {
    "DEFAULT_RETRY_BACKOFF": 0.0,
    # process tests pass short heartbeat / stale times to their workers this way
    **json.loads(os.environ.get("TASKITO_TEST_OVERRIDES", "{}")),
}

# Django's Tasks framework runs on taskito (tests/backends); any queue name is valid.
TASKS = {"default": {"BACKEND": "taskito.backends.TaskitoBackend", "QUEUES": []}}

# TASKITO_TEST_DJANGO_LOGGING=1 leaves Django's default logging (worker -v tests)
if os.environ.get("TASKITO_TEST_DJANGO_LOGGING") != "1":
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "loggers": {"taskito": {"handlers": ["console"], "level": "WARNING"}},
    }
