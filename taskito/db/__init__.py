"""The only package that branches on the database vendor."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from taskito.conf import taskito_settings
from taskito.db.base import Backend, ClaimedJob

__all__ = ["Backend", "ClaimedJob", "get_backend", "on_connection_created"]

_backends: dict[str, Backend] = {}
_lock = threading.Lock()


def get_backend(alias: str) -> Backend:
    """The SQL backend for a database alias (cached)."""
    backend = _backends.get(alias)
    if backend is None:
        with _lock:
            backend = _backends.get(alias) or _make(alias)
            _backends[alias] = backend
    return backend


def _make(alias: str) -> Backend:
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        from taskito.db.sqlite import SQLiteBackend

        return SQLiteBackend(alias)
    if vendor == "postgresql":
        from taskito.db.postgresql import PostgreSQLBackend

        return PostgreSQLBackend(alias)
    raise NotImplementedError(
        f"taskito supports SQLite and PostgreSQL; database {alias!r} is {vendor}"
    )


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Apply per-connection settings (SQLite pragmas) to connections of the taskito database."""
    if connection.alias != taskito_settings.DATABASE or not taskito_settings.SQLITE_PRAGMAS:
        return
    if connection.vendor == "sqlite":
        get_backend(connection.alias).configure_connection(connection)
