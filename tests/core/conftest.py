"""Factories for core tests: jobs in each status, reached through the public API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from taskito import JobResult
from taskito.models import Job
from tests.testapp import tasks


@pytest.fixture
def row() -> Callable[[Any], Job]:
    """The Job row of a handle (or id), read fresh from the database."""

    def get(job: Any) -> Job:
        return Job.objects.get(id=getattr(job, "id", job))

    return get




@pytest.fixture
def running_job(engine, queue) -> Callable[..., JobResult]:
    """Enqueue `noop()` and claim it, so that it is running (nothing executes it)."""

    def make(**options: Any) -> JobResult:
        job = tasks.noop.apply_async(**options)
        claimed = engine.claim(worker_id="test-claimer", limit=100)
        assert job.id in {c.id for c in claimed}
        return job

    return make


class _CountingSQLite:
    """Stands in for the raw sqlite3 connection and records the statements sent to it
    directly (taskito's SQLite insert path bypasses Django's cursor wrapper)."""

    def __init__(self, raw: Any, log: list[str]) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_log", log)

    def execute(self, sql: str, *args: Any) -> Any:
        self._log.append(sql)
        return self._raw.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._log.append(sql)
        return self._raw.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


@pytest.fixture
def count_queries() -> Callable[[], Any]:
    """`with count_queries() as log:` records every statement sent to the database, whether
    through Django's cursors or straight to the driver; `len(log)` is the round-trip count
    (an executemany counts once)."""
    from contextlib import contextmanager

    from django.db import connection

    @contextmanager
    def counting() -> Any:
        log: list[str] = []

        def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            log.append(sql)
            return execute(sql, params, many, context)

        connection.ensure_connection()
        raw = connection.connection
        if connection.vendor == "sqlite":
            connection.connection = _CountingSQLite(raw, log)
        try:
            with connection.execute_wrapper(wrapper):
                yield log
        finally:
            connection.connection = raw

    return counting
