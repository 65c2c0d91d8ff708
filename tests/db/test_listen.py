"""Where PostgreSQL LISTENs: the jobs alias on a direct line, TASKITO["LISTEN_DATABASE"] when
set, nowhere (polling) behind a proxy (that case: tests/process/test_pgbouncer.py)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import override_settings

from taskito.db import get_dialect
from taskito.db.base import ReadyWatcher

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: LISTEN")


def test_listen_alias_is_the_jobs_alias_on_a_direct_line(postgresql: None):
    from taskito.db.postgresql import through_proxy

    assert not through_proxy(connection)
    assert get_dialect("default").listen_alias() == "default"


def test_listen_alias_follows_the_setting(postgresql: None):
    with override_settings(TASKITO={"LISTEN_DATABASE": "jobs"}):
        assert get_dialect("default").listen_alias() == "jobs"


def test_result_wait_listens_on_the_listen_alias(postgresql: None):
    from taskito.db.postgresql import DoneWatcher

    job_id = uuid.uuid4()
    with override_settings(TASKITO={"LISTEN_DATABASE": "jobs"}):
        watcher = get_dialect("default").job_watcher(job_id, 0.01)
        try:
            assert isinstance(watcher, DoneWatcher)
            assert watcher._connection.alias == "jobs"
        finally:
            watcher.close()


def test_ready_watcher_sees_a_ready_job(queue, vendor: str):
    from tests.testapp import tasks

    watcher = ReadyWatcher(queue.dialect, 0.001, 0.002, None)
    assert not watcher.changed()  # nothing ready
    tasks.add.delay(1, 2)
    assert watcher.wait(5)


def test_listen_database_applies_to_the_taskito_database_only(postgresql: None):
    # a Queue(using="jobs") listens on its own database: notifications belong to one database
    with override_settings(TASKITO={"LISTEN_DATABASE": "default"}):
        assert get_dialect("jobs").listen_alias() == "jobs"
