"""System checks for the TASKITO setting and the database that holds the jobs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

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
    messages: list[Any] = [*_check_middleware(), *_check_listen_alias(engine)]
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


def _check_listen_alias(engine: str) -> list[Any]:
    """TASKITO["LISTEN_DATABASE"], when set, must name a configured PostgreSQL alias."""
    alias = taskito_settings.LISTEN_DATABASE
    if alias is None:
        return []
    database = settings.DATABASES.get(alias)
    if database is None or not str(database.get("ENGINE", "")).endswith("postgresql"):
        what = "is not in DATABASES" if database is None else "is not a PostgreSQL database"
        return [Error(f"TASKITO['LISTEN_DATABASE'] is {alias!r}, which {what}",
                      hint="Name a DATABASES alias that connects to the same PostgreSQL "
                           "server as TASKITO['DATABASE'] without a pooler in between.",
                      id="taskito.E005")]
    if not engine.endswith("postgresql"):
        return [Warning("TASKITO['LISTEN_DATABASE'] is set but the jobs database is not "
                        "PostgreSQL; it is not used", id="taskito.W004")]
    return []


@register(Tags.database)
def check_listen(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Warn when workers would LISTEN through a proxy such as PgBouncer (`check --database`
    and `migrate` run this one: it asks the server which port it listens on)."""
    try:
        jobs = taskito_settings.DATABASE
        explicit = taskito_settings.LISTEN_DATABASE
    except ConfigurationError:
        return []  # check_settings reports it
    alias = explicit or jobs
    if (not databases or alias not in databases or alias not in settings.DATABASES
            or explicit == jobs or connections[alias].vendor != "postgresql"):
        return []  # not asked to query it, or LISTEN on the jobs alias was asked for
    from taskito.db.postgresql import through_proxy

    try:
        proxied = through_proxy(connections[alias])
    except DatabaseError:
        return []  # unreachable: other checks and the first query will say so
    if not proxied:
        return []
    what = ("workers will poll for jobs (about twenty reads a second each when idle) "
            "instead of being woken by notifications" if explicit is None else
            "listening there may land on a pooled server connection and wake nobody")
    return [Warning(
        f"database {alias!r} reaches PostgreSQL through a proxy (the server's port differs "
        f"from the one connected to), likely a pooler such as PgBouncer: {what}.",
        hint="Add a DATABASES alias that connects straight to PostgreSQL and name it in "
             "TASKITO['LISTEN_DATABASE']; if the proxy is not a transaction pooler (a "
             "port mapping), set TASKITO['LISTEN_DATABASE'] to the jobs alias itself.",
        id="taskito.W003")]
