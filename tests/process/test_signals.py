"""SIGTERM drains: the worker stops claiming, finishes what it holds, exits 0."""

from __future__ import annotations

import io
import os
import signal

import pytest

from taskito.management.commands.taskito_worker import Command
from taskito.models import Job
from taskito.runtime.worker import Worker
from taskito.states import JobStatus
from tests.conftest import wait_for
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def _hold_one_job(spawn, tmp_path, *worker_args: str):
    """Start a worker whose first job runs until tmp_path/release appears."""
    release, started = tmp_path / "release", tmp_path / "started"
    blocker = tasks.block_until.apply_async(args=(str(release), str(started), 30), priority=10)
    worker = spawn("worker", worker_argv(*worker_args))
    wait_for(lambda: started.exists() or worker.popen.poll() is not None, timeout=30)
    assert started.exists(), worker.describe()
    return worker, blocker, release


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_jobs_in_flight_claims_no_more_and_exits_zero(spawn, tmp_path, sig):
    # Staged before the worker starts: a worker that kept claiming after the signal would run
    # all of them (and, without --burst, never exit).
    staged = tasks.add.map([(i, 1) for i in range(10)])
    worker, blocker, release = _hold_one_job(spawn, tmp_path, "--concurrency", "1")

    worker.popen.send_signal(sig)
    wait_for(lambda: f"{sig.name} received" in worker.stderr, timeout=10)
    assert worker.popen.poll() is None, "exited while a job was still running"
    assert blocker.refresh().status == "running"
    release.touch()  # only now can the running job finish

    assert worker.wait(timeout=30) == 0, worker.describe()
    assert blocker.result(timeout=1) == "released"
    assert not Job.objects.filter(status=JobStatus.RUNNING).exists()
    claimed = Job.objects.filter(attempts__gt=0)
    # what the worker held either ran to completion (the blocker) or, claimed into its
    # prefetch buffer but not started, went back to pending for another worker ...
    assert set(claimed.values_list("status", flat=True)) <= {JobStatus.COMPLETE,
                                                             JobStatus.PENDING}
    assert claimed.filter(status=JobStatus.PENDING, worker_id__isnull=False).count() == 0
    # ... and nothing else was claimed after the signal: with one slot held by the blocker,
    # none of the staged jobs ever ran, so all ten are pending again
    assert [j.refresh().status for j in staged] == ["pending"] * 10
    assert claimed.filter(status=JobStatus.COMPLETE).count() == 1
    assert "stopped after 1 jobs" in worker.stdout


def test_jobs_enqueued_after_sigterm_are_not_claimed(spawn, tmp_path):
    worker, blocker, release = _hold_one_job(spawn, tmp_path, "--concurrency", "4")

    worker.popen.send_signal(signal.SIGTERM)
    wait_for(lambda: "SIGTERM received" in worker.stderr, timeout=10)
    late = tasks.add.map([(i, 1) for i in range(5)])  # the worker has free slots
    release.touch()

    assert worker.wait(timeout=30) == 0, worker.describe()
    assert blocker.result(timeout=1) == "released"
    assert {j.refresh().status for j in late} == {"pending"}
    assert Job.objects.filter(attempts__gt=0).count() == 1


def test_second_sigterm_exits_at_once(spawn, tmp_path):
    worker, blocker, _release = _hold_one_job(spawn, tmp_path)

    worker.popen.send_signal(signal.SIGTERM)
    wait_for(lambda: "SIGTERM received" in worker.stderr, timeout=10)
    worker.popen.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=10) == 128 + signal.SIGTERM
    # Left running for the lifeline to requeue; never marked done by a worker that quit.
    assert blocker.refresh().status == "running"


class _Exited(Exception):
    pass


def test_second_signal_landing_inside_the_first_handler_exits_at_once(monkeypatch):
    """A second signal can arrive while the first one's handler writes its message; Python
    then runs the second handler nested inside the first. It must already see the worker
    stopping and exit, as the message promises."""
    handlers = {}
    monkeypatch.setattr(signal, "signal", lambda sig, fn: handlers.setdefault(sig, fn))

    def exit_(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", exit_)

    class SecondSignalWhileWriting(io.StringIO):
        sent = False

        def write(self, text: str) -> int:
            written = super().write(text)
            if not self.sent:  # the second signal lands right after the message
                self.sent = True
                handlers[signal.SIGTERM](signal.SIGTERM, None)
            return written

    stderr = SecondSignalWhileWriting()
    worker = Worker(concurrency=1)
    Command(stderr=stderr)._install_signals(worker)

    with pytest.raises(_Exited) as exited:
        handlers[signal.SIGTERM](signal.SIGTERM, None)

    assert exited.value.args == (128 + signal.SIGTERM,)
    assert worker.stopping
    assert stderr.getvalue().count("SIGTERM received") == 1


def test_sigterm_on_an_idle_worker_exits_zero_promptly(spawn):
    worker = spawn("worker", worker_argv())
    wait_for(lambda: "taskito worker" in worker.stdout or worker.popen.poll() is not None,
             timeout=30)

    worker.popen.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=10) == 0, worker.describe()
    assert "stopped after 0 jobs" in worker.stdout
