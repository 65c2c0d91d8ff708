"""SQLite: a worker copies the write-ahead log into the database file from a thread of its
own (`Checkpointer`), so that no claim, finish or enqueue pays for a checkpoint inside its
commit (`wal_autocheckpoint` stays as a backstop)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from taskito import signals
from taskito.db.sqlite import Checkpointer
from taskito.runtime.worker import Worker
from tests.conftest import wait_for
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sqlite_file():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: the write-ahead log")


def test_the_checkpointer_copies_pages_other_connections_wrote(sqlite_file, queue):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # this connection never checkpoints
        try:
            tasks.noop.map([()] * 200)
            checkpointer = Checkpointer(queue.dialect, interval=(0.005, 0.01))
            try:
                wait_for(lambda: checkpointer.checkpointed > 0, timeout=10, interval=0.005)
            finally:
                checkpointer.close()
            assert not checkpointer._thread.is_alive()
            # everything in the log is in the database file now
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            busy, log, done = cursor.fetchone()
            assert (busy, done) == (0, log)
        finally:
            cursor.execute("PRAGMA wal_autocheckpoint=1000")


def test_a_worker_checkpoints_while_it_runs(sqlite_file, queue):
    seen: list[set[str]] = []

    def receiver(**kwargs):
        seen.append({t.name for t in threading.enumerate()})

    signals.job_started.connect(receiver)
    try:
        tasks.noop.delay()
        assert Worker(queue, burst=True).run() == 1
    finally:
        signals.job_started.disconnect(receiver)
    assert "taskito-checkpoint" in seen[0]
    assert "taskito-checkpoint" not in {t.name for t in threading.enumerate()}


def test_only_sqlite_files_get_one(queue):
    upkeep = queue.dialect.upkeep()
    try:
        assert isinstance(upkeep, Checkpointer) is (connection.vendor == "sqlite")
    finally:
        if upkeep is not None:
            upkeep.close()
