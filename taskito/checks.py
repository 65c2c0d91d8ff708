"""System checks for the TASKITO setting and the database that holds the jobs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from taskito.conf import taskito_settings
from taskito.exceptions import ConfigurationError


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """TASKITO must be valid and name a configured database of a supported vendor."""
    try:
        taskito_settings.reload()
        alias = taskito_settings.DATABASE
    except ConfigurationError as exc:
        return [Error(str(exc), id="taskito.E001")]
    if alias not in settings.DATABASES:
        return [Error(f"TASKITO['DATABASE'] is {alias!r}, which is not in DATABASES",
                      id="taskito.E002")]
    database: dict[str, Any] = settings.DATABASES[alias]
    engine = str(database.get("ENGINE", ""))
    if not engine.endswith(("sqlite3", "postgresql", "mysql")):
        return [Error(f"taskito supports SQLite, PostgreSQL and MariaDB/MySQL; database "
                      f"{alias!r} uses {engine}", id="taskito.E003")]
    messages: list[Any] = _check_middleware()
    options: dict[str, Any] = database.get("OPTIONS", {})
    if engine.endswith("sqlite3") and options.get("transaction_mode") != "IMMEDIATE":
        messages.append(Warning(
            f"SQLite database {alias!r} uses deferred transactions: a transaction of yours "
            "that reads and then enqueues can fail with 'database is locked' when a worker "
            "writes at the same moment.",
            hint=f"Set DATABASES[{alias!r}]['OPTIONS']['transaction_mode'] = 'IMMEDIATE' "
                 "(taskito's own writes do not need it).",
            id="taskito.W001"))
    level = str(options.get("isolation_level") or "read committed").lower()
    if engine.endswith("mysql") and level != "read committed":
        messages.append(Warning(
            f"MySQL/MariaDB database {alias!r} uses isolation level {level!r}: enqueueing "
            "with a unique_key inside a transaction may not see a job another process "
            "enqueued with the same key after the transaction's first read.",
            hint=f"Leave DATABASES[{alias!r}]['OPTIONS']['isolation_level'] unset (Django "
                 "opens MySQL connections in 'read committed'), or give taskito a database "
                 "alias of its own with TASKITO['DATABASE'].",
            id="taskito.W002"))
    return messages


def _check_middleware() -> list[Any]:
    """Every TASKITO["MIDDLEWARE"] entry must import and be a TaskMiddleware."""
    from taskito.middleware import resolve

    messages: list[Any] = []
    for path in taskito_settings.MIDDLEWARE:
        if not isinstance(path, str):
            messages.append(Error(f'TASKITO["MIDDLEWARE"] holds {path!r}; give dotted paths '
                                  "of taskito.TaskMiddleware subclasses", id="taskito.E004"))
            continue
        try:
            resolve([path], 'TASKITO["MIDDLEWARE"]')
        except ConfigurationError as exc:
            messages.append(Error(str(exc), hint="Give the dotted path of a subclass of "
                                  "taskito.TaskMiddleware.", id="taskito.E004"))
    return messages
