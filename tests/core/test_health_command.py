"""`manage.py taskito_health`: the exit code and one line for a container's exec probe."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from taskito.models import WorkerHeartbeat
from tests.conftest import ROOT, child_env, manage

pytestmark = pytest.mark.django_db(transaction=True)


def beat(engine, worker_id: str, hostname: str | None = None) -> None:
    now = timezone.now()
    engine.heartbeat(worker_id=worker_id, hostname=hostname or socket.gethostname(), pid=1,
                     queues="*", concurrency=1, started_at=now, now=now)


def probe(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("taskito_health", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    return code, out.getvalue().strip(), err.getvalue().strip()


def age(worker_id: str, seconds: float) -> None:
    """Move a worker's last heartbeat `seconds` into the past."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).update(
        last_seen=timezone.now() - timedelta(seconds=seconds))


def test_health_passes_for_a_live_worker_on_this_host(engine):
    beat(engine, "here")
    code, out, err = probe()
    assert (code, err) == (0, "")
    assert out.startswith("ok: worker here heartbeated")


def test_health_fails_without_a_worker_row_on_this_host(engine):
    beat(engine, "elsewhere", hostname="some-other-host")
    code, out, err = probe()
    assert (code, out) == (1, "")
    assert err == f"no worker row for host {socket.gethostname()}"


@override_settings(TASKITO={"WORKER_STALE_AFTER": 30})
def test_health_fails_for_a_stale_worker_and_says_by_how_much(engine):
    beat(engine, "here")
    age("here", 100)
    code, _, err = probe()
    assert code == 1
    assert err.startswith("worker here stale by 70 s (last heartbeat 100 s ago, limit 30 s)")


@override_settings(TASKITO={"WORKER_STALE_AFTER": 30})
def test_health_reads_the_newest_heartbeat_of_the_host(engine):
    beat(engine, "old")
    beat(engine, "new")
    age("old", 100)
    assert probe()[0] == 0


@override_settings(TASKITO={"WORKER_STALE_AFTER": 30})
def test_health_checks_the_named_worker_only(engine):
    beat(engine, "a", hostname="host-a")
    beat(engine, "b", hostname="host-b")
    age("b", 100)
    assert probe("--worker", "a")[0] == 0
    code, _, err = probe("--worker", "b")
    assert code == 1 and err.startswith("worker b stale by 70 s")
    assert probe("--worker", "c")[1:] == ("", "no worker row for worker c")


def test_health_exits_1_from_a_real_process_when_the_database_is_unreachable(tmp_path,
                                                                           vendor):
    """A probe process whose database cannot answer: an empty SQLite file (no tables) or a
    server database that does not exist."""
    env = child_env(TASKITO_TEST_DIR=str(tmp_path / "elsewhere"),
                    TASKITO_TEST_PG_NAME="taskito_no_such_database")
    done = subprocess.run(manage("taskito_health"), env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("database unreachable: "), line
    assert done.stdout == ""


def test_health_exits_0_from_a_real_process_for_a_live_worker(engine):
    beat(engine, "here")
    done = subprocess.run(manage("taskito_health", "--worker", "here"), env=child_env(),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("ok: worker here heartbeated")
