"""The first hour of a new user, from the wheel: build it, `pip install "<wheel>[rest,sse]"` into
a fresh venv, and take a brand-new `django-admin startproject` through the README's quick start
(migrate, enqueue, a `--burst` worker) and the admin's Taskito page. The new venv gets the
Python and the Django version of the line that runs this test (`scripts/test.sh` runs it on
Python 3.12 + Django 5.2 LTS, where the first hour used to end in a 500).

Slow and needs the package index (pip installs Django and the extras): `-m packaging` runs it;
`scripts/test.sh` does so once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import django
import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
#: what the wheel is built from: the source tree without local state
SKIP = shutil.ignore_patterns(".git", ".venv*", "test-output", "build", "dist", "*.egg-info",
                              "__pycache__", "*.sqlite3*", ".mypy_cache", ".ruff_cache",
                              ".pytest_cache", "node_modules")

SETTINGS = """
INSTALLED_APPS += ["taskito", "shop"]
TASKITO = {"DEFAULT_QUEUE": "default"}
DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE"}
"""

TASKS = """
from taskito import queue

@queue.task()
def add(a: int, b: int) -> int:
    return a + b
"""

ENQUEUE = "from shop.tasks import add; print(add.delay(2, 3).id)"

CHECK = """
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
from taskito import queue
import django, taskito, rest_framework, django_eventstream

setup_test_environment()
job = queue.get_job("{job_id}")
print("status", job.status, job.result(timeout=1))
print("taskito from", taskito.__file__)
print("Django", django.get_version())
admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(admin)
for url in ("/admin/", "/admin/taskito/", "/admin/taskito/job/", "/admin/taskito/job/dashboard/"):
    response = client.get(url)
    print("GET", url, response.status_code)
"""


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 900
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(tmp: Path) -> dict[str, str]:
    """The environment of a user's shell: nothing of this test run's settings or path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "TASKITO_", "PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update({"HOME": os.environ.get("HOME", str(tmp)), "PYTHONUNBUFFERED": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by pip from a copy of the source tree."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
         str(src)], cwd=tmp, env=clean_env(tmp))
    (built,) = (tmp / "dist").glob("*.whl")
    return built


def test_wheel_is_django_taskito_with_its_license_and_files(wheel):
    import zipfile

    assert wheel.name.startswith("django_taskito-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "taskito/templatetags/taskito_csp.py" in names
    assert "taskito/templates/taskito/admin/dashboard.html" in names
    assert "taskito/static/taskito/admin/dashboard.js" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not any(n.startswith("tests/") for n in names)


def test_new_project_from_the_wheel_migrates_runs_a_job_and_serves_the_admin(wheel,
                                                                            tmp_path):
    env = clean_env(tmp_path)
    venv.create(tmp_path / "venv", with_pip=True)
    py = str(tmp_path / "venv" / "bin" / "python")
    run([py, "-m", "pip", "install", "-q", f"{wheel}[rest,sse]",
         f"Django=={django.get_version()}"], cwd=tmp_path, env=env)

    run([str(tmp_path / "venv" / "bin" / "django-admin"), "startproject", "mysite"],
        cwd=tmp_path, env=env)
    site = tmp_path / "mysite"
    run([py, "manage.py", "startapp", "shop"], cwd=site, env=env)
    (site / "shop" / "tasks.py").write_text(textwrap.dedent(TASKS))
    with (site / "mysite" / "settings.py").open("a") as fh:
        fh.write(SETTINGS)

    migrated = run([py, "manage.py", "migrate"], cwd=site, env=env)
    assert "taskito.W001" not in migrated.stdout + migrated.stderr  # the quick start is silent
    assert "Applying taskito.0001" in migrated.stdout
    job_id = run([py, "manage.py", "shell", "-c", ENQUEUE], cwd=site,
                 env=env).stdout.strip().splitlines()[-1]
    worked = run([py, "manage.py", "taskito_worker", "--burst"], cwd=site, env=env,
                 timeout=120)
    assert "stopped after 1 jobs" in worked.stdout, worked.stdout
    checked = run([py, "manage.py", "shell", "-c", CHECK.format(job_id=job_id)], cwd=site,
                  env=env).stdout

    assert "status complete 5" in checked, checked
    assert f"taskito from {tmp_path / 'venv'}" in checked  # the wheel's, not this tree's
    assert f"Django {django.get_version()}" in checked
    for url in ("/admin/", "/admin/taskito/", "/admin/taskito/job/",
                "/admin/taskito/job/dashboard/"):
        assert f"GET {url} 200" in checked, checked
