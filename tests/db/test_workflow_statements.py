"""The workflow statements on every database: the waiting count, the release, and the
workflow row's counters and status, called on the dialect directly."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from taskito import chord
from taskito.db import get_dialect
from taskito.models import Job, Workflow
from taskito.states import WorkflowStatus
from taskito.workflows import WAITING
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def d():
    return get_dialect("default")


@pytest.fixture
def flow():
    """A chord of two header steps (0, 1) and a body (2) waiting on both."""
    return chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s(7)).apply_async()


def test_a_waiting_step_is_released_only_when_its_last_parent_is_done(d, flow):
    with transaction.atomic(), d.cursor() as cursor:
        d.step_parents_done(cursor, flow.id, [(2, 1)])
        assert d.ready_steps(cursor, flow.id, [2], WAITING) == []
        d.step_parents_done(cursor, flow.id, [(2, 1)])
        ((job_id, step, args),) = d.ready_steps(cursor, flow.id, [2], WAITING)
        assert (step, args) == (2, "[7]")
        d.release_steps(cursor, [(job_id, "[[2, 4], 7]", timezone.now())])
        assert d.ready_steps(cursor, flow.id, [2], WAITING) == []
    body = Job.objects.get(id=job_id)
    assert body.args == "[[2, 4], 7]" and body.workflow_waiting == 0
    assert body.scheduled_at < WAITING


def test_the_waiting_count_never_goes_below_zero(d, flow):
    with transaction.atomic(), d.cursor() as cursor:
        d.step_parents_done(cursor, flow.id, [(2, 3)])
    assert Job.objects.get(workflow_id=flow.id, workflow_step=2).workflow_waiting == 2


def test_step_results_and_pending_steps(d, flow, worker):
    worker.run_until_empty()
    with d.cursor() as cursor:
        assert d.step_results(cursor, flow.id, [0, 1]) == {0: "2", 1: "4"}
        assert d.pending_steps(cursor, flow.id, [0, 1, 2]) == []


def test_exits_done_completes_the_workflow_with_the_last_one(d):
    flow = chord([tasks.add.s(1, 1)], tasks.tsum.s()).apply_async()
    Workflow.objects.filter(id=flow.id).update(waiting=2)
    now = timezone.now()
    with transaction.atomic(), d.cursor() as cursor:
        d.exits_done(cursor, flow.id, 1, now)
        row = Workflow.objects.get(id=flow.id)
        assert (row.waiting, row.status, row.finished_at) == (1, WorkflowStatus.ACTIVE, None)
        d.exits_done(cursor, flow.id, 1, now)
    row = Workflow.objects.get(id=flow.id)
    assert (row.waiting, row.status) == (0, WorkflowStatus.COMPLETE)
    assert row.finished_at is not None


def test_end_and_reopen_workflow(d, flow):
    now = timezone.now()
    with transaction.atomic(), d.cursor() as cursor:
        assert d.end_workflow(cursor, flow.id, int(WorkflowStatus.FAILED), now)
        assert not d.end_workflow(cursor, flow.id, int(WorkflowStatus.CANCELLED), now)
        assert d.reopen_workflow(cursor, flow.id)
    assert Workflow.objects.get(id=flow.id).status == WorkflowStatus.ACTIVE
