"""The only package that branches on the database vendor."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from taskito.conf import taskito_settings
from taskito.db.base import Dialect

__all__ = ["Dialect", "get_dialect", "on_connection_created"]

_dialects: dict[str, Dialect] = {}
_lock = threading.Lock()


def get_dialect(alias: str) -> Dialect:
    """The SQL dialect for a database alias (cached)."""
    dialect = _dialects.get(alias)
    if dialect is None:
        with _lock:
            dialect = _dialects.get(alias) or _make(alias)
            _dialects[alias] = dialect
    return dialect


def _make(alias: str) -> Dialect:
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        from taskito.db.sqlite import SQLiteDialect

        return SQLiteDialect(alias)
    if vendor == "postgresql":
        from taskito.db.postgresql import PostgreSQLDialect

        return PostgreSQLDialect(alias)
    if vendor == "mysql":
        from taskito.db.mysql import MySQLDialect

        return MySQLDialect(alias)
    raise NotImplementedError(
        f"taskito supports SQLite, PostgreSQL and MariaDB/MySQL; database {alias!r} is {vendor}"
    )


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Apply per-connection settings (SQLite pragmas) to connections of the taskito database."""
    if connection.alias != taskito_settings.DATABASE or not taskito_settings.SQLITE_PRAGMAS:
        return
    if connection.vendor == "sqlite":
        get_dialect(connection.alias).configure_connection(connection)
