"""depends_on: a job waits for its dependencies; dependencies that can never complete are
refused, and jobs waiting on a job that died or was cancelled are cancelled."""

from __future__ import annotations

import uuid

import pytest

from taskito import DependencyError
from taskito.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_depends_on_unknown_job_raises_and_writes_nothing():
    with pytest.raises(DependencyError, match="unknown job"):
        tasks.noop.apply_async(depends_on=[uuid.uuid4()])
    assert not Job.objects.exists()


def test_depends_on_garbage_id_raises():
    with pytest.raises(DependencyError, match="not a job id"):
        tasks.noop.apply_async(depends_on=["not-a-uuid"])


def test_depends_on_dead_job_raises(dead_job):
    dead = dead_job()
    with pytest.raises(DependencyError, match="dead"):
        tasks.noop.apply_async(depends_on=[dead.id])


def test_depends_on_cancelled_job_raises():
    cancelled = tasks.noop.delay()
    cancelled.cancel()
    with pytest.raises(DependencyError, match="cancelled"):
        tasks.noop.apply_async(depends_on=[cancelled.id])


def test_map_depends_on_dead_job_raises_and_writes_nothing(dead_job):
    dead = dead_job()
    with pytest.raises(DependencyError):
        tasks.noop.map([(), ()], depends_on=[dead.id])
    assert Job.objects.count() == 1


def test_dependent_is_not_claimed_until_its_dependency_completes(worker):
    first = tasks.add.delay(1, 1)
    second = tasks.add.apply_async(args=(2, 2), depends_on=[first.id])
    assert worker.run_once() == 1
    assert (first.refresh().status, second.refresh().status) == ("complete", "pending")
    assert worker.run_once() == 1
    assert second.refresh().status == "complete"


def test_dependent_waits_for_every_dependency(engine, worker, queue):
    a, b = tasks.noop.delay(), tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[a, b])
    engine.claim(worker_id="other", limit=1)  # one dependency is running, the other pending
    worker.run_until_empty()
    assert child.refresh().status == "pending"


def test_depends_on_a_completed_job_is_ready_at_once(worker, completed_job):
    done = completed_job()
    child = tasks.noop.apply_async(depends_on=[done.id])
    assert worker.run_once() == 1
    assert child.refresh().status == "complete"


def test_dependents_are_cancelled_when_the_dependency_dies(worker):
    parent = tasks.fatal.delay()
    child = tasks.noop.apply_async(depends_on=[parent])
    grandchild = tasks.noop.apply_async(depends_on=[child])
    worker.run_until_empty()
    assert parent.refresh().status == "dead"
    assert (child.refresh().status, grandchild.refresh().status) == ("cancelled", "cancelled")
    assert str(parent.id) in child.error


def test_dependents_are_cancelled_when_the_running_dependency_is_cancelled(worker, queue):
    from django.dispatch import receiver

    from taskito import signals

    parent = tasks.cancellable.delay()
    child = tasks.noop.apply_async(depends_on=[parent])

    @receiver(signals.job_started, weak=False)
    def cancel_it(sender, job_id, **kwargs):
        queue.cancel_running_job(job_id)

    try:
        worker.run_until_empty()
    finally:
        signals.job_started.disconnect(cancel_it)
    assert parent.refresh().status == "cancelled"
    assert child.refresh().status == "cancelled"


def test_job_result_dependencies_and_dependents():
    parent = tasks.noop.delay()
    child = tasks.noop.apply_async(depends_on=[parent])
    assert child.dependencies == [parent.id]
    assert parent.dependents == [child.id]
    assert parent.dependencies == []
