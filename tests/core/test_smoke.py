from __future__ import annotations

import pytest

from tests.testapp import tasks


@pytest.mark.django_db
def test_delay_then_run_once_completes(queue, worker):
    job = tasks.add.delay(2, 3)
    assert job.status == "pending"
    assert worker.run_once() == 1
    assert job.refresh().status == "complete"
    assert job.result(timeout=1) == 5
