"""A database server (PostgreSQL, MariaDB/MySQL) with several worker processes: exactly-once
under load, connections killed mid-run; LISTEN reconnection on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count

from taskito.models import Job
from tests.conftest import wait_for
from tests.process.conftest import Spawn
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

JOBS = 10_000


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: LISTEN/NOTIFY")


@pytest.fixture
def server() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("database servers only: row locks across processes and connections")


@pytest.fixture
def executions(server: None, executions: None) -> None:
    """tests/process/conftest.py's table, after the skip on SQLite."""


def _kill_other_connections() -> int:
    """Kill every other connection to the test database, as a server restart would."""
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("SELECT id FROM information_schema.PROCESSLIST "
                           "WHERE db = DATABASE() AND id <> CONNECTION_ID()")
            ids = [row[0] for row in cursor.fetchall()]
            for pid in ids:
                cursor.execute(f"KILL CONNECTION {int(pid)}")
            return len(ids)
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return len(cursor.fetchall())


def _listeners() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND query = 'LISTEN taskito_jobs' AND pid <> pg_backend_pid()")
        return [row[0] for row in cursor.fetchall()]


def test_four_workers_run_ten_thousand_jobs_exactly_once(spawn: Spawn, executions):
    tasks.count_execution.map([(str(i),) for i in range(JOBS)])
    workers = [spawn(f"w{i}", worker_argv("--burst", "--worker-id", f"w{i}")) for i in range(4)]
    for w in workers:
        assert w.wait(timeout=240) == 0, w.describe()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT tag) FROM taskito_test_executions")
        total, distinct = cursor.fetchone()
    assert (total, distinct) == (JOBS, JOBS)
    assert Job.objects.filter(status__in=[0, 1]).count() == 0
    per_worker = dict(Job.objects.values_list("worker_id").annotate(n=Count("id")))
    assert set(per_worker) <= {"w0", "w1", "w2", "w3"}, per_worker


def test_worker_reconnects_its_listen_connection(spawn: Spawn, postgresql: None):
    worker = spawn("w", worker_argv("--worker-id", "listener"))
    first = wait_for(_listeners, timeout=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first[0]])
    # A new LISTEN connection (another backend pid) within 10 s, and jobs still run.
    wait_for(lambda: [pid for pid in _listeners() if pid != first[0]], timeout=10)
    job = tasks.add.delay(2, 2)
    assert job.result(timeout=10) == 4
    assert "LISTEN connection lost" in worker.stderr
    worker.popen.terminate()
    assert worker.wait(timeout=30) == 0


def test_worker_keeps_working_after_its_connections_are_killed(spawn: Spawn, executions):
    worker = spawn("w", worker_argv("--worker-id", "survivor"))
    assert tasks.add.delay(1, 1).result(timeout=30) == 2
    assert _kill_other_connections() >= 1  # what a server restart looks like from the worker
    jobs = tasks.count_execution.map([(str(i),) for i in range(200)])
    for job in jobs:
        job.result(timeout=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(DISTINCT tag) FROM taskito_test_executions")
        assert cursor.fetchone()[0] == 200
    worker.popen.terminate()
    assert worker.wait(timeout=30) == 0
