"""Fixtures for tests that run real worker and producer processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import child_env
from tests.helpers.processes import Launcher, Proc

Spawn = Callable[..., Proc]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """`spawn(name, argv, **env)`: start a process on the test database (see `child_env`),
    with stdout/stderr in files under tmp_path; anything still running is killed after the
    test."""
    launcher = Launcher(tmp_path)

    def start(name: str, argv: list[str], **env: str) -> Proc:
        return launcher.start(name, argv, child_env(PYTHONUNBUFFERED="1", **env))

    yield start
    launcher.stop()


@pytest.fixture
def executions() -> Iterator[None]:
    """The table `tasks.count_execution` writes one row to per run (on a database server)."""
    serial = "bigint AUTO_INCREMENT" if connection.vendor == "mysql" else "bigserial"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS taskito_test_executions "
                       f"(id {serial} PRIMARY KEY, tag varchar(100) NOT NULL)")
        cursor.execute("TRUNCATE taskito_test_executions")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE taskito_test_executions")
