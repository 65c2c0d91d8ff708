"""Framework-free helpers of the Django Tasks backend (`backend.py` beside this module):
checking a backend's OPTIONS, reading an exception's class path from a stored traceback, and
quieting the backport's log line."""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from taskito import exceptions as taskito_exceptions
from taskito.exceptions import ConfigurationError
from taskito.registry import OPTIONS as TASKITO_OPTIONS
from taskito.registry import build_spec

#: taskito options a Django task can take (its queue and priority are the Task's own)
TASK_OPTIONS = frozenset(TASKITO_OPTIONS - {"queue", "priority"})

_TRACEBACK_START = re.compile(
    r"^( {2}\+ )?(Exception Group )?Traceback \(most recent call last\):$")
_EXCEPTION_NAME = re.compile(r"^([A-Za-z_][\w.]*)(:|$)")


def uses_tasks_backend(tasks: Any) -> bool:
    """Whether the TASKS setting routes any backend to taskito."""
    return isinstance(tasks, dict) and any(
        isinstance(params, dict) and str(params.get("BACKEND", "")).startswith("taskito.")
        for params in tasks.values())


def django_task_paths() -> list[str] | None:
    """Module paths of the Django `@task` functions on a taskito backend found so far (see
    `backend.discover_tasks`), or None when TASKS routes no backend to taskito."""
    if not uses_tasks_backend(getattr(settings, "TASKS", None)):
        return None
    from taskito.contrib.tasks_backend.backend import discover_tasks  # the Tasks framework

    return discover_tasks()


def parse_options(raw: Any) -> dict[str, Any]:
    """Check a backend's OPTIONS: taskito task options, plus "tasks" for per-task ones.

    Exception classes may be given as dotted paths. Raises ConfigurationError."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"OPTIONS must be a dict, not {raw!r}")
    options = check_options(raw, "OPTIONS", extra={"tasks"})
    per_task = raw.get("tasks", {})
    if not isinstance(per_task, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in per_task.items()):
        raise ConfigurationError('OPTIONS["tasks"] must map task module paths to dicts of '
                                 "options")
    options["tasks"] = {path: check_options(values, f'OPTIONS["tasks"][{path!r}]')
                        for path, values in per_task.items()}
    return options


def check_options(raw: Mapping[str, Any], where: str,
                  extra: Iterable[str] = ()) -> dict[str, Any]:
    """Validated taskito options from `raw` (besides the `extra` keys); `where` names them in
    errors."""
    unknown = sorted(set(raw) - TASK_OPTIONS - set(extra))
    if unknown:
        raise ConfigurationError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: "
                                 f"{', '.join(sorted(TASK_OPTIONS | set(extra)))}")
    options = {k: v for k, v in raw.items() if k in TASK_OPTIONS}
    for name in ("retry_on", "dont_retry_on"):
        if name in options:
            options[name] = _exception_classes(where, name, options[name])
    try:
        build_spec(_no_task, **dict(options))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return options


def _no_task() -> None:
    """Stands in for a task function while options are checked."""


def _exception_classes(where: str, name: str, value: Any) -> tuple[Any, ...]:
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    classes = []
    for item in items:
        if isinstance(item, str):
            try:
                item = import_string(item)
            except ImportError as exc:
                raise ConfigurationError(f"{where}: {name}: cannot import {item!r}") from exc
        classes.append(item)
    return tuple(classes)


def exception_path(error: str, traceback: str) -> str:
    """The exception's class path, read from the header line Python wrote for it at the end
    of the traceback ("myapp.errors.Boom: message"; builtins have no module). taskito's
    error rows store only "Name: message" besides the traceback."""
    lines = traceback.splitlines()
    starts = [i for i, line in enumerate(lines) if _TRACEBACK_START.match(line)]
    candidates = lines[starts[-1] + 1:] if starts else lines[:1]
    group = bool(starts) and lines[starts[-1]].startswith("  + ")
    prefix = "  | " if group else ""
    for line in candidates:
        if line.startswith(prefix) and line[len(prefix):][:1] not in ("", " "):
            match = _EXCEPTION_NAME.match(line[len(prefix):])
            if match:
                return _qualified(match.group(1))
            break
    match = _EXCEPTION_NAME.match(error)
    return _qualified(match.group(1)) if match else "builtins.Exception"


def _qualified(name: str) -> str:
    if "." in name:
        return name
    # Python leaves the module out for builtins; taskito's own errors without a traceback
    # (an unknown task name) are recorded by name only.
    return f"taskito.exceptions.{name}" if (
        not hasattr(builtins, name) and hasattr(taskito_exceptions, name)) else f"builtins.{name}"


class NoEmptyExcInfo(logging.Filter):
    """The backport logs a FAILED `task_finished` with `logger.exception`, as if inside an
    `except` block; taskito sends it once the outcome is written, where there is none, so
    the line would be followed by a stray "NoneType: None". Keep the line, drop that."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[0] is None:
            record.exc_info = None
        return True


def quiet_empty_exc_info(logger: logging.Logger) -> None:
    """Add `NoEmptyExcInfo` to `logger` (once)."""
    if not any(isinstance(f, NoEmptyExcInfo) for f in logger.filters):
        logger.addFilter(NoEmptyExcInfo())
