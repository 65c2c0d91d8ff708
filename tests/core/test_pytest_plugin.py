"""The pytest plugin: its `taskito_run` fixture works in a throwaway project (a pytest run in
a subprocess), and the package declares it as a `pytest11` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

SETTINGS = """
SECRET_KEY = "throwaway"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "taskito", "shop"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                          "NAME": {db!r}, "TEST": {{"NAME": {db!r}}}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TASKITO = {{"DEFAULT_RETRY_BACKOFF": 0}}
"""

TASKS = """
from taskito import queue

@queue.task()
def total(a, b):
    return a + b

@queue.task(max_retries=1, retry_delays=[30])
def flaky(path):
    import os
    if not os.path.exists(path):
        open(path, "w").close()
        raise RuntimeError("first try")
    return "second try"
"""

TESTS = """
from datetime import timedelta

import pytest
from django.utils import timezone

from shop.tasks import flaky, total
from taskito.testing import assert_enqueued


def test_taskito_run_runs_what_the_test_enqueued(taskito_run):
    job = total.delay(2, 3)
    assert_enqueued(total, args=(2, 3), count=1)
    assert [j.id for j in taskito_run()] == [job.id]
    assert job.result(timeout=1) == 5


def test_taskito_run_with_now_runs_a_due_retry(taskito_run, tmp_path):
    job = flaky.delay(str(tmp_path / "seen"))
    taskito_run()
    assert job.refresh().status == "pending"
    taskito_run(now=timezone.now() + timedelta(seconds=31))
    assert job.result(timeout=1) == "second try"


@pytest.mark.django_db(transaction=True)
def test_taskito_run_in_a_transactional_test(taskito_run):
    assert taskito_run(task=total) == []


def test_a_test_without_the_fixture_gets_no_database():
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        total.delay(1, 1)
"""


def test_taskito_run_fixture_in_a_throwaway_project(tmp_path):
    project = tmp_path / "project"
    (project / "shop").mkdir(parents=True)
    (project / "throwaway_settings.py").write_text(
        textwrap.dedent(SETTINGS.format(db=str(tmp_path / "shop.sqlite3"))))
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "tasks.py").write_text(textwrap.dedent(TASKS))
    (project / "test_shop.py").write_text(textwrap.dedent(TESTS))
    (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = throwaway_settings\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKITO_TEST",
                                                                    "DJANGO_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(ROOT)])
    # The plugin comes from the installed package's pytest11 entry point, as for a user
    # (scripts/setup.sh reinstalls the checkout whenever pyproject.toml changes).
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p",
         "no:cacheprovider", "-q", "-W", "error::pytest.PytestUnraisableExceptionWarning",
         "--basetemp", str(tmp_path / "basetemp")],
        cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_package_declares_the_plugin_as_a_pytest11_entry_point():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {"taskito": "taskito.pytest_plugin"}


def test_the_plugin_defines_only_its_fixture():
    import taskito.pytest_plugin as plugin

    hooks = [name for name in vars(plugin) if name.startswith("pytest_")]
    assert hooks == [] and callable(plugin.taskito_run)
