"""A running worker outlives its database going away for a while: on SQLite a file locked by
someone else past busy_timeout, on PostgreSQL its connections terminated by the server. The
worker loop and the lifeline log the error, back off, reconnect, and carry on."""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest
from django.db import connection

from taskito.models import WorkerHeartbeat
from tests.conftest import wait_for
from tests.process.helpers import Proc, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"HEARTBEAT_INTERVAL": 0.2, "IDLE_RECHECK": 0.05})


def _start(spawn, name: str) -> Proc:
    worker = spawn(name, worker_argv("--concurrency", "1", "--worker-id", name),
                   TASKITO_TEST_OVERRIDES=FAST)
    first = tasks.add.delay(1, 1)
    assert first.result(timeout=30) == 2, worker.describe()
    return worker


def _last_seen(name: str):
    return WorkerHeartbeat.objects.get(worker_id=name).last_seen


def _carries_on(worker: Proc, name: str) -> None:
    """After the outage: jobs run again, the heartbeat moves, and the worker drains cleanly."""
    seen = _last_seen(name)
    assert tasks.add.delay(2, 3).result(timeout=30) == 5, worker.describe()
    wait_for(lambda: _last_seen(name) > seen, timeout=30)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.describe()
    assert "Traceback" not in worker.stderr, worker.describe()


def test_worker_and_lifeline_outlive_a_locked_sqlite_file(spawn, vendor):
    if vendor != "sqlite":
        pytest.skip("SQLite only: a file lock")
    worker = _start(spawn, "locked-out")
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # every write of the worker now waits, then fails
        wait_for(lambda: "database error during claim" in worker.stderr
                 and "lifeline: database error" in worker.stderr, timeout=60)
        assert worker.popen.poll() is None, worker.describe()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _carries_on(worker, "locked-out")


def test_worker_and_lifeline_outlive_terminated_connections(spawn, vendor):
    if vendor != "postgresql":
        pytest.skip("PostgreSQL only: pg_terminate_backend")
    worker = _start(spawn, "terminated")

    def terminate_the_others() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            return int(cursor.fetchone()[0])

    assert terminate_the_others() >= 1
    # the next statement on each of them fails; the worker reconnects (LISTEN included) and
    # a new job is picked up, which needs the watcher's connection too
    wait_for(lambda: "database error" in worker.stderr, timeout=30)
    assert worker.popen.poll() is None, worker.describe()
    _carries_on(worker, "terminated")
