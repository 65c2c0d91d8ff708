"""Hard timeouts in the threaded worker loop."""

from __future__ import annotations

import pytest

from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_past_its_timeout_fails_and_its_late_result_is_dropped(queue):
    slow = tasks.overruns.delay(1.0)
    quick = tasks.add.delay(1, 2)
    worker = Worker(queue, concurrency=2, burst=True, poll_interval=0.001)
    worker.run()  # burst: returns once the overrunning thread is free again
    slow.refresh()
    assert slow.status == "dead"
    assert slow.error == "TaskTimeoutError: timed out after 0.2 s"
    assert queue.dead_letters()[0]["original_job_id"] == str(slow.id)
    assert quick.result(timeout=1) == 3


def test_timed_out_job_is_retried_per_its_policy(queue):
    slow = tasks.overruns.apply_async((0.6,), max_retries=1, timeout=0.2)
    worker = Worker(queue, concurrency=1, burst=True, poll_interval=0.001)
    worker.run()
    slow.refresh()
    assert slow.status == "dead"  # timed out twice: first attempt retried, then dead-lettered
    assert [e["attempt"] for e in slow.errors] == [1, 2]
