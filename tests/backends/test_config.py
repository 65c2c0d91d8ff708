"""Per-task options (the task class, OPTIONS, OPTIONS["tasks"]), system checks, and the import
of the backend without a Tasks framework."""

from __future__ import annotations

import importlib
import sys

import django
import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from taskito.backends import TASK_OPTIONS, TaskitoTask, exception_path, parse_options
from taskito.contrib.tasks_backend.utils import uses_tasks_backend
from taskito.exceptions import ConfigurationError
from taskito.models import Job
from tests.backends.framework import TaskResultStatus, task_backends
from tests.testapp import django_tasks as t

BACKEND = "taskito.backends.TaskitoBackend"


def tasks_setting(**options):
    return {"default": {"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": options}}


def test_task_class_fields_are_the_taskito_options():
    fields = set(TaskitoTask.__dataclass_fields__) - {
        "func", "priority", "backend", "queue_name", "run_after", "takes_context"}
    assert fields == TASK_OPTIONS


@pytest.mark.django_db
def test_task_options_reach_the_job():
    result = t.flaky.enqueue(0)
    assert Job.objects.get(id=result.id).max_retries == 2


@pytest.mark.django_db
def test_without_options_the_taskito_settings_apply(settings):
    settings.TASKITO = {"DEFAULT_MAX_RETRIES": 4, "DEFAULT_TIMEOUT": 9}
    job = Job.objects.get(id=t.fails_plainly.enqueue().id)
    assert (job.max_retries, job.timeout_ms) == (4, 9000)


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(max_retries=0, timeout=5))
def test_backend_options_apply_to_every_task(worker):
    result = t.fails_plainly.enqueue()
    assert (Job.objects.get(id=result.id).max_retries,
            Job.objects.get(id=result.id).timeout_ms) == (0, 5000)
    assert worker.run_until_empty() == 1
    assert t.fails_plainly.get_result(result.id).status == TaskResultStatus.FAILED


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(max_retries=0, tasks={
    "tests.testapp.django_tasks.fails_plainly": {"max_retries": 1, "retry_delays": [0]},
    "tests.testapp.django_tasks.flaky": {"max_retries": 0}}))
def test_per_task_options_override_backend_options_and_the_task_its_own(worker):
    plain = t.fails_plainly.enqueue()
    own = t.flaky.enqueue(0)
    assert Job.objects.get(id=plain.id).max_retries == 1
    assert Job.objects.get(id=own.id).max_retries == 2  # set on the task itself
    worker.run_until_empty()
    assert t.fails_plainly.get_result(plain.id).attempts == 2


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(max_retries=3, retry_delays=[0],
                                       dont_retry_on=["tests.testapp.django_tasks.Boom"]))
def test_exception_classes_can_be_dotted_paths(worker):
    result = t.fails_plainly.enqueue()
    assert worker.run_until_empty() == 1
    assert t.fails_plainly.get_result(result.id).status == TaskResultStatus.FAILED


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(unique=True))
def test_unique_option_returns_the_pending_result():
    first = t.noop_task.enqueue(1)
    assert t.noop_task.enqueue(1) == first
    assert t.noop_task.enqueue(2) != first


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(middleware=["tests.testapp.middleware.First"]))
def test_middleware_option_wraps_django_tasks(worker):
    from tests.testapp.middleware import EVENTS

    EVENTS.clear()
    result = t.noop_task.enqueue(1)
    assert worker.run_until_empty() == 1
    assert t.noop_task.get_result(result.id).status == TaskResultStatus.SUCCESSFUL
    assert [(label, hook) for label, hook, _ in EVENTS] == [
        ("first", "on_enqueue"), ("first", "before"), ("first", "after")]
    EVENTS.clear()


@pytest.mark.parametrize(("options", "message"), [
    ({"middleware": ["no.such.Middleware"]}, "cannot import 'no.such.Middleware'"),
    ({"retries": 3}, "unknown option(s) retries"),
    ({"queue": "x"}, "unknown option(s) queue"),
    ({"max_retries": -1}, "max_retries must be >= 0"),
    ({"retry_on": ["no.such.Error"]}, "cannot import 'no.such.Error'"),
    ({"tasks": ["x"]}, 'OPTIONS["tasks"] must map'),
    ({"tasks": {"a.b": {"timeout": "soon"}}}, "OPTIONS[\"tasks\"]['a.b']: task option timeout"),
])
def test_invalid_options_are_refused(options, message):
    with pytest.raises(ConfigurationError) as exc:
        parse_options(options)
    assert message in str(exc.value)


def test_invalid_options_are_a_system_check_error():
    if django.VERSION < (6, 0):
        importlib.import_module("django_tasks.checks")  # what the backport's app registers
    with override_settings(TASKS=tasks_setting(max_retries="many")):
        errors = [m for m in run_checks() if m.id == "taskito.E102"]
    assert len(errors) == 1
    assert "TASKS['default']" in errors[0].msg and "max_retries" in errors[0].msg


@pytest.mark.django_db
def test_invalid_options_refuse_enqueue():
    with override_settings(TASKS=tasks_setting(max_retries="many")), \
            pytest.raises(ImproperlyConfigured, match="max_retries"):
        t.noop_task.enqueue()


def test_valid_configuration_checks_clean():
    assert [m for m in run_checks() if m.id.startswith("taskito.E1")] == []


def test_missing_app_is_a_system_check_error(monkeypatch):
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "taskito")
    [error] = task_backends["default"].check()
    assert error.id == "taskito.E101"


def test_apps_import_the_backend_only_when_tasks_use_it():
    assert uses_tasks_backend({"default": {"BACKEND": BACKEND}})
    assert not uses_tasks_backend({"default": {
        "BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}})
    assert not uses_tasks_backend(None)


@pytest.mark.parametrize(("error", "traceback", "path"), [
    ("Boom: x", "Traceback (most recent call last):\n  File \"m.py\", line 1\n"
                "myapp.errors.Boom: x\nnote\n", "myapp.errors.Boom"),
    ("KeyError: 'k'", "Traceback (most recent call last):\n  File \"m.py\"\nKeyError: 'k'\n",
     "builtins.KeyError"),
    ("E: outer", "Traceback (most recent call last):\n  File \"a\"\nValueError: inner\n\n"
                 "During handling of the above exception, another exception occurred:\n\n"
                 "Traceback (most recent call last):\n  File \"b\"\npkg.E: outer\n", "pkg.E"),
    ("ExceptionGroup: g", "  + Exception Group Traceback (most recent call last):\n"
                          "  |   File \"a\"\n  | ExceptionGroup: g (1 sub-exception)\n"
                          "  +-+---- 1 ----\n    | ValueError: v\n", "builtins.ExceptionGroup"),
    ("SerializationError: result", "taskito.exceptions.SerializationError: result\n",
     "taskito.exceptions.SerializationError"),
    ("TaskNotRegistered: no task named 'x'", "", "taskito.exceptions.TaskNotRegistered"),
    ("worker error: RuntimeError()", "", "builtins.Exception"),
])
def test_exception_path_is_read_from_the_traceback(error, traceback, path):
    assert exception_path(error, traceback) == path


def test_backend_import_without_a_tasks_framework_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(django, "VERSION", (5, 2, 0, "final", 0))
    monkeypatch.setitem(sys.modules, "django_tasks", None)  # not installed
    monkeypatch.delitem(sys.modules, "taskito.backends")
    monkeypatch.delitem(sys.modules, "taskito.contrib.tasks_backend.backend")
    with pytest.raises(ImproperlyConfigured, match="pip install django-tasks"):
        importlib.import_module("taskito.backends")
