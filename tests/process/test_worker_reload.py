"""`taskito_worker --reload`: a changed Python file restarts the worker through Django's
autoreloader once the running job finished, and SIGTERM still stops it cleanly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from taskito.models import Job
from tests.conftest import wait_for
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

WATCHING = "reload: watching for code changes"
CHANGED = "changed, finishing running jobs first"
MODULE = Path(tasks.__file__)


def _touch_until(proc, text: str, timeout: float = 30.0) -> None:
    """Give MODULE a new mtime every half second until `text` appears in the worker's log:
    the reloader only notices changes after its first look at the files."""
    deadline = time.monotonic() + timeout
    while text not in proc.stderr:
        assert time.monotonic() < deadline, proc.describe()
        stamp = time.time()
        os.utime(MODULE, (stamp, stamp))
        _wait_briefly(proc, text, 0.5)


def _wait_briefly(proc, text: str, seconds: float) -> None:
    """Poll for `text` for up to `seconds` (the worker must stay alive meanwhile)."""
    end = time.monotonic() + seconds
    while text not in proc.stderr and time.monotonic() < end:
        assert proc.popen.poll() is None, proc.describe()
        time.sleep(0.02)


@pytest.fixture
def keep_mtime():
    before = MODULE.stat()
    yield
    os.utime(MODULE, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_reload_restarts_after_the_running_job_and_stops_on_sigterm(spawn, tmp_path,
                                                                     keep_mtime):
    proc = spawn("worker", worker_argv("--reload", "--concurrency", "1"),
                 TASKITO_TEST_DJANGO_LOGGING="1")
    wait_for(lambda: WATCHING in proc.stderr or proc.popen.poll() is not None, timeout=60)
    assert proc.popen.poll() is None, proc.describe()
    release, started = tmp_path / "release", tmp_path / "started"
    job = tasks.block_until.delay(str(release), str(started))
    wait_for(started.exists, timeout=30)

    _touch_until(proc, CHANGED)
    # the reload waits for the running job: no second worker process yet
    assert proc.stderr.count(WATCHING) == 1
    release.touch()
    wait_for(lambda: proc.stderr.count(WATCHING) == 2, timeout=60)

    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.attempts) == (2, 1)  # finished by the first process
    assert proc.stderr.count("stopped worker=") == 1
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.describe()
    assert proc.stderr.count("stopped worker=") == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_reload_worker_stops_cleanly_on_one_signal(spawn, sig):
    proc = spawn("worker", worker_argv("--reload"), TASKITO_TEST_DJANGO_LOGGING="1")
    wait_for(lambda: WATCHING in proc.stderr or proc.popen.poll() is not None, timeout=60)
    done = tasks.add.delay(1, 1)
    wait_for(lambda: Job.objects.get(id=done.id).status == 2, timeout=30)

    proc.popen.send_signal(sig)  # to the parent only, as Ctrl-C reaches it

    assert proc.wait(timeout=60) == 0, proc.describe()
    assert proc.stderr.count("stopped worker=") == 1
    assert f"{signal.Signals(sig).name} received" in proc.stderr
