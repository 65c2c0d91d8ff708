"""`taskito_worker` as a real process: burst, --max-jobs, --queues and the banner."""

from __future__ import annotations

import re

import pytest

from taskito.models import Job
from taskito.registry import registry
from taskito.states import JobStatus
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def test_burst_drains_staged_jobs_and_exits_zero(start_worker):
    jobs = tasks.add.map([(i, i) for i in range(200)])

    proc = start_worker("--burst", "--concurrency", "3")
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert Job.objects.filter(status=JobStatus.COMPLETE).count() == 200
    assert [j.result(timeout=1) for j in jobs[:5]] == [0, 2, 4, 6, 8]
    assert "stopped after 200 jobs" in out
    assert "Traceback" not in err


def test_banner_names_queues_concurrency_and_tasks(start_worker):
    proc = start_worker("--burst", "--concurrency", "3", "--queues", "emails,default")
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert re.search(r"queues:\s+emails, default", out), out
    assert re.search(r"concurrency:\s+3 threads", out), out
    assert "burst" in out
    # the worker found the same tasks as this process (the banner shows the first 20)
    names = registry.names()
    assert f"tasks ({len(names)}):" in out, out
    assert names[0] in out
    assert tasks.add.name in out


def test_max_jobs_exits_after_that_many(start_worker):
    tasks.add.map([(i, 1) for i in range(20)])

    proc = start_worker("--max-jobs", "5")  # not burst: only the job budget ends it
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert Job.objects.filter(status=JobStatus.COMPLETE).count() == 5
    assert Job.objects.filter(status=JobStatus.PENDING, attempts=0).count() == 15
    assert "stopped after 5 jobs" in out


def test_queues_flag_takes_only_those_queues(start_worker):
    emails = tasks.send_email.map([(f"user{i}@example.com",) for i in range(10)])
    others = tasks.add.map([(i, 1) for i in range(10)])

    proc = start_worker("--burst", "--queues", "emails")
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert re.search(r"queues:\s+emails\n", out), out
    assert {j.refresh().status for j in emails} == {"complete"}
    assert {j.refresh().status for j in others} == {"pending"}
    assert Job.objects.filter(queue="default", attempts__gt=0).count() == 0
