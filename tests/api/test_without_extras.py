"""Without the optional extras: the system checks name what is missing, the progress stream
answers 501 instead of failing, and the core runs with none of them importable.

A package is made missing by import blocking: `sys.modules[name] = None` makes both
`import name` and `importlib.util.find_spec(name)` see no such package."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from taskito.checks import check_settings
from taskito.contrib.sse import progress_url
from taskito.contrib.sse.checks import check_streaming
from tests.conftest import ROOT
from tests.testapp import tasks

EXTRAS = ("rest_framework", "drf_spectacular", "django_eventstream", "redis", "fastapi",
          "pydantic", "prometheus_client", "opentelemetry")


@pytest.fixture
def without(monkeypatch):
    """`without("redis", ...)`: those packages cannot be imported or found until the test ends."""

    def block(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return block


def ids(messages) -> list[str]:
    return [m.id for m in messages]


# -- taskito.contrib.sse's checks ---------------------------------------------------------

def test_sse_checks_pass_with_everything_installed():
    assert check_streaming() == []


def test_sse_check_e001_without_django_eventstream(without):
    without("django_eventstream")
    assert ids(check_streaming()) == ["taskito_sse.E001"]


def test_sse_check_e003_without_rest_framework(without):
    without("rest_framework")
    (error,) = check_streaming()
    assert error.id == "taskito_sse.E003" and "REST framework" in error.msg


def test_sse_check_e002_redis_transport_without_redis(without, settings):
    settings.EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": 6379}
    assert check_streaming() == []
    without("redis")
    assert ids(check_streaming()) == ["taskito_sse.E002"]


def test_sse_check_w001_without_an_asgi_server(settings):
    del settings.ASGI_APPLICATION
    assert ids(check_streaming()) == ["taskito_sse.W001"]


# -- taskito's own checks ---------------------------------------------------------------------

def test_check_e001_names_the_bad_setting(settings):
    with override_settings(TASKITO={"DEFAULT_PRIORITY": "high"}):
        (error,) = check_settings()
    assert error.id == "taskito.E001" and "DEFAULT_PRIORITY" in error.msg


def test_check_e002_database_alias_not_configured(settings):
    with override_settings(TASKITO={"DATABASE": "nowhere"}):
        (error,) = check_settings()
    assert error.id == "taskito.E002" and "'nowhere'" in error.msg


def test_check_e003_unsupported_database_engine(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES, "oracle",
                        {"ENGINE": "django.db.backends.oracle", "NAME": "x"})
    with override_settings(TASKITO={"DATABASE": "oracle"}):
        (error,) = check_settings()
    assert error.id == "taskito.E003" and "django.db.backends.oracle" in error.msg


# -- the progress stream without django-eventstream -----------------------------------------

@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_progress_of_an_active_job_is_501_without_django_eventstream(async_client,
                                                                           without):
    job = await sync_to_async(tasks.noop.delay)()
    without("django_eventstream")
    response = await async_client.get(progress_url(job.id))
    assert response.status_code == 501
    assert "django-eventstream" in response.json()["detail"]


# -- the core with no extra installed ---------------------------------------------------------

CORE_ONLY = textwrap.dedent("""
    import sys
    for name in {extras!r}:
        sys.modules[name] = None  # as if not installed
    import django
    from django.conf import settings
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "taskito"],
        DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
                                "OPTIONS": {{"transaction_mode": "IMMEDIATE"}}}}}},
        USE_TZ=True, SECRET_KEY="x", DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    import io
    call_command("check", fail_level="WARNING", stdout=io.StringIO())  # raises on any message
    from taskito import queue
    from taskito.runtime.worker import Worker

    @queue.task()
    def add(a, b):
        return a + b

    job = add.delay(2, 3)
    Worker(queue, concurrency=1).run_until_empty()
    print("result", job.result(timeout=5))
    for module in ("taskito.contrib.rest", "taskito.contrib.fastapi"):
        try:
            __import__(module + ".views" if module.endswith("rest") else module)
        except ImportError as exc:
            print("refused", module, exc.name.split(".")[0])
""")


def test_the_core_runs_with_no_extra_installed(tmp_path):
    script = CORE_ONLY.format(extras=EXTRAS, db=str(tmp_path / "core.sqlite3"))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                       "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "result 5"
    # the adapters say at import that their extra is missing, not later with a NameError
    assert lines[1:] == ["refused taskito.contrib.rest rest_framework",
                         "refused taskito.contrib.fastapi fastapi"]
