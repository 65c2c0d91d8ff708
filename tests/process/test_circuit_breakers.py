"""A real worker process with a circuit breaker (tasks.guarded: threshold 3 in 60 s, cooldown
2 s): failures open it, the task's jobs wait without spending retries, and once the
dependency is back the probe closes it and the waiting jobs run."""

from __future__ import annotations

import signal

import pytest
from django.db.models import F

from taskito.models import CircuitBreaker, Job
from tests.conftest import wait_for
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def _state() -> int | None:
    row = CircuitBreaker.objects.filter(task_name=tasks.guarded.name).first()
    return None if row is None else row.state


def test_worker_opens_the_breaker_then_a_probe_closes_it(spawn, tmp_path):
    switch = tmp_path / "switch"
    switch.write_text("fail")
    worker = spawn("breaker", worker_argv("--concurrency", "2", "--worker-id", "breaker"))
    jobs = [tasks.guarded.delay(str(switch)) for _ in range(4)]
    wait_for(lambda: _state() == 1, timeout=60)
    # open: a new job of the task is put back (pending, its claim not counted), not run
    extra = tasks.guarded.delay(str(switch))
    wait_for(lambda: Job.objects.filter(id=extra.id, status=0, attempts=0,
                                        scheduled_at__gt=F("created_at")).exists(), timeout=30)
    assert not Job.objects.filter(status=4).exists(), worker.describe()
    switch.write_text("ok")
    wait_for(lambda: all(j.refresh().status == "complete" for j in [*jobs, extra]),
             timeout=60)
    assert _state() == 0
    assert extra.refresh().to_dict()["retry_count"] == 0
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.describe()
    assert "opened task=tests.testapp.tasks.guarded" in worker.stderr, worker.describe()
    assert "closed task=tests.testapp.tasks.guarded" in worker.stderr, worker.describe()
    assert "Traceback" not in worker.stderr, worker.describe()
