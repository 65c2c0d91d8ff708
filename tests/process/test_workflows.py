"""Workflows with real worker processes: a worker SIGKILLed in the middle of a workflow, and
several workers finishing a chord's header at the same time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskito import chain, chord
from taskito.models import Job
from tests.conftest import wait_for
from tests.process.conftest import Spawn
from tests.process.helpers import worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

FAST = {"TASKITO_TEST_OVERRIDES": json.dumps(
    {"HEARTBEAT_INTERVAL": 0.2, "WORKER_STALE_AFTER": 1.0})}


def test_workflow_completes_after_its_worker_is_killed_mid_step(spawn: Spawn, tmp_path: Path):
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    wf = chain(tasks.add.s(1, 1), tasks.first_attempt_waits.si(str(started), str(release)),
               tasks.add.s(1)).apply_async()
    victim = spawn("victim", worker_argv("--worker-id", "victim", "--concurrency", "1"), **FAST)
    wait_for(lambda: any(started.iterdir()), timeout=60)
    victim.popen.kill()
    victim.popen.wait()
    rescuer = spawn("rescuer", worker_argv("--worker-id", "rescuer", "--concurrency", "1"),
                    **FAST)
    result = wf.result(timeout=90)
    assert result == rescuer.popen.pid + 1  # the rescued attempt ran on the rescuer
    steps = wf.refresh().jobs
    assert [s.status for s in steps] == ["complete"] * 3
    assert steps[1].retry_count == 1


def test_chord_header_finished_by_several_workers_releases_the_body_once(spawn: Spawn):
    n = 200
    wf = chord([tasks.add.s(i, 0) for i in range(n)], tasks.tsum.s()).apply_async()
    for i in range(3):
        spawn(f"w{i}", worker_argv("--worker-id", f"w{i}", "--concurrency", "4"), **FAST)
    assert wf.result(timeout=120) == sum(range(n))
    body = Job.objects.get(workflow_id=wf.id, workflow_step=n)
    assert body.attempts == 1
    assert wf.status == "complete"
