"""`taskito_worker -v` in a project with Django's default logging: the job lines appear on
stderr at the mapped level; a project that configures taskito's loggers keeps its own."""

from __future__ import annotations

import re

import pytest

from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

DEFAULT_LOGGING = {"TASKITO_TEST_DJANGO_LOGGING": "1"}


def _run(spawn, *args: str, **env: str) -> str:
    proc = spawn("worker", worker_argv("--burst", "--concurrency", "1", *args), **env)
    assert proc.wait() == 0, proc.describe()
    return proc.stderr


def test_default_verbosity_shows_one_line_per_job_event(spawn):
    ok = tasks.add.delay(1, 2)
    bad = tasks.fatal.delay()

    err = _run(spawn, **DEFAULT_LOGGING)

    assert re.search(rf"INFO taskito\.job received job={ok.id} task=\S+add queue=default "
                     r"attempt=1\n", err), err
    assert re.search(rf"INFO taskito\.job succeeded job={ok.id} task=\S+ attempt=1 "
                     r"duration=\d+\.\d+s\n", err), err
    assert re.search(rf"ERROR taskito\.job failed job={bad.id} .* dead_letter=\S+ "
                     r"error='Fatal", err), err
    assert "INFO taskito.worker started worker=" in err
    assert "DEBUG" not in err


def test_verbosity_0_shows_only_problems(spawn):
    tasks.add.delay(1, 2)
    bad = tasks.fatal.delay()

    err = _run(spawn, "-v", "0", **DEFAULT_LOGGING)

    assert "received" not in err and "succeeded" not in err
    assert f"failed job={bad.id}" in err


def test_verbosity_2_adds_debug_lines(spawn):
    tasks.add.delay(1, 2)
    err = _run(spawn, "-v", "2", **DEFAULT_LOGGING)
    assert "DEBUG taskito.lifeline heartbeat worker=" in err, err
    assert "INFO taskito.job succeeded" in err


def test_a_project_that_configures_taskito_keeps_its_levels(spawn):
    tasks.add.delay(1, 2)
    err = _run(spawn, "-v", "2")  # tests.settings: taskito at WARNING
    assert "received" not in err and "heartbeat" not in err
