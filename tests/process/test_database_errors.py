"""`taskito_worker` on a database it cannot use: one line naming the alias, non-zero exit."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.process.helpers import Proc, worker_argv

SERVER_URL = os.environ.get("TASKITO_TEST_DATABASE_URL", "")
ON_MYSQL = SERVER_URL.startswith(("mysql:", "mariadb:"))
PG_URL = None if ON_MYSQL else SERVER_URL
EMPTY_DB = "taskito_process_empty"
on_postgresql = pytest.mark.skipif(not PG_URL, reason="needs TASKITO_TEST_DATABASE_URL "
                                                      "(PostgreSQL)")
on_mysql = pytest.mark.skipif(not ON_MYSQL, reason="needs TASKITO_TEST_DATABASE_URL "
                                                   "(MariaDB/MySQL)")

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def _worker_on(spawn, **env: str) -> Proc:
    return spawn("worker", worker_argv("--burst"),
                 DJANGO_SETTINGS_MODULE="tests.process.settings_nodb", **env)


def _assert_one_line_error(proc: Proc, *words: str) -> None:
    assert proc.wait(timeout=30) != 0, proc.describe()
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for word in ("'default'", "migrate", *words):
        assert word in err, err


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database without taskito's tables."""
    import psycopg

    assert PG_URL
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {EMPTY_DB}")
        conn.execute(f"CREATE DATABASE {EMPTY_DB}")
    yield EMPTY_DB
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {EMPTY_DB} WITH (FORCE)")


@pytest.fixture
def empty_mysql_database() -> Iterator[str]:
    """A fresh MariaDB/MySQL database without taskito's tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {EMPTY_DB}")
        cursor.execute(f"CREATE DATABASE {EMPTY_DB}")
    yield EMPTY_DB
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {EMPTY_DB}")


def test_unmigrated_sqlite_file(spawn, tmp_path):
    empty = tmp_path / "empty.sqlite3"
    empty.touch()

    proc = _worker_on(spawn, TASKITO_NODB_SQLITE=str(empty))

    _assert_one_line_error(proc, "taskito_job")


def test_sqlite_file_in_missing_directory(spawn, tmp_path):
    proc = _worker_on(spawn, TASKITO_NODB_SQLITE=str(tmp_path / "missing" / "db.sqlite3"))

    _assert_one_line_error(proc, "unable to open")


@on_postgresql
def test_missing_postgresql_database(spawn):
    proc = _worker_on(spawn, TASKITO_NODB_PG_NAME="taskito_no_such_db")

    _assert_one_line_error(proc, "taskito_no_such_db")


@on_postgresql
def test_unmigrated_postgresql_database(spawn, empty_pg_database):
    proc = _worker_on(spawn, TASKITO_NODB_PG_NAME=empty_pg_database)

    _assert_one_line_error(proc, "taskito_job")


@on_mysql
def test_missing_mysql_database(spawn):
    proc = _worker_on(spawn, TASKITO_NODB_PG_NAME="taskito_no_such_db")

    _assert_one_line_error(proc, "taskito_no_such_db")


@on_mysql
def test_unmigrated_mysql_database(spawn, empty_mysql_database):
    proc = _worker_on(spawn, TASKITO_NODB_PG_NAME=empty_mysql_database)

    _assert_one_line_error(proc, "taskito_job")
