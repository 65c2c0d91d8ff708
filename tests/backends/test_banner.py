"""The worker banner names the Django `@task` functions it can find, and says how it finds the
others (by module path, when a job names them)."""

from __future__ import annotations

import io

import pytest
from django.test import override_settings

from taskito.management.commands import taskito_worker
from taskito.registry import Registry, registry
from tests.testapp import django_tasks as t

pytestmark = pytest.mark.django_db


def banner(worker) -> str:
    out = io.StringIO()
    command = taskito_worker.Command(stdout=out)
    command.verbosity = 1
    command._banner(worker)
    return out.getvalue()


def test_banner_counts_the_django_tasks_of_loaded_app_modules(worker):
    text = banner(worker)

    paths = [v.module_path for v in vars(t).values() if isinstance(v, type(t.noop_task))]
    assert f"django tasks ({len(paths)}): " in text, text
    assert t.noop_task.module_path in text
    assert "imported by its module path when a job names it" in text
    assert f"tasks ({len(registry.names())}): " in text  # taskito's own tasks, as before


def test_banner_with_only_django_tasks_does_not_say_none_found(worker, monkeypatch):
    monkeypatch.setattr(taskito_worker, "registry", Registry())  # no @queue.task at all

    text = banner(worker)

    assert "tasks (0): none registered with @queue.task" in text, text
    assert "none found" not in text
    assert "django tasks (" in text


@override_settings(TASKS={})
def test_banner_has_no_django_tasks_line_without_the_backend(worker):
    text = banner(worker)
    assert "django tasks" not in text
    assert "tasks (" in text
