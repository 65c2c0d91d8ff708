"""Workflows: chain, group, chord written as rows at apply_async and advanced by the worker
that finishes each step (stepped here with run_once / run_until_empty)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from django.db import transaction

from taskito import (
    MaxRetriesExceededError,
    SerializationError,
    Signature,
    TaskCancelledError,
    TaskNotRegistered,
    WorkflowResult,
    chain,
    chord,
    group,
)
from taskito.models import DeadLetter, Job, Workflow
from taskito.workflows import MAX_GROUP
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _statuses(wf: WorkflowResult) -> list[str]:
    return [job.status for job in wf.refresh().jobs]


# -- writing ---------------------------------------------------------------------------------
def test_apply_async_writes_every_step_at_once_and_only_the_first_is_ready(engine):
    wf = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.mul.s(3)).apply_async()
    assert Job.objects.filter(workflow_id=wf.id).count() == 3
    assert wf.status == "pending"
    claimed = engine.claim(worker_id="w", limit=10)
    assert [c.task_name for c in claimed] == [tasks.add.name]
    assert claimed[0].workflow_step == 0


def test_chain_passes_each_result_to_the_next_step(worker):
    wf = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.mul.s(3)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == 39
    assert wf.status == "complete"
    assert _statuses(wf) == ["complete"] * 3


def test_one_step_runs_per_claim_round_in_chain_order(worker):
    wf = chain(tasks.add.s(1, 1), tasks.add.s(1), tasks.add.s(1)).apply_async()
    assert worker.run_once() == 1
    assert _statuses(wf) == ["complete", "pending", "pending"]
    assert wf.status == "running"
    assert worker.run_once() == 1
    assert _statuses(wf) == ["complete", "complete", "pending"]


def test_si_ignores_the_parent_result(worker):
    wf = chain(tasks.add.s(1, 2), tasks.add.si(5, 5)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == 10


def test_group_results_come_back_in_member_order(worker):
    wf = group(tasks.add.s(i, i) for i in range(10)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == [2 * i for i in range(10)]


def test_chord_body_receives_the_list_of_header_results(worker):
    wf = chord([tasks.add.s(i, i) for i in range(10)], tasks.tsum.s()).apply_async()
    worker.run_once()  # the body is not claimable while the header runs
    body = wf.refresh().jobs[-1]
    assert body.status == "pending"
    worker.run_until_empty()
    assert wf.result(timeout=5) == 90


def test_chord_body_keeps_its_own_arguments_after_the_results(worker):
    wf = chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s(extra=100)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == 106


def test_group_nested_in_a_chain_acts_as_a_chord(worker):
    wf = chain(tasks.add.s(1, 1), group(tasks.add.s(1), tasks.add.s(2)),
               tasks.tsum.s()).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == 7  # 2 -> [3, 4] -> 7


def test_chain_ending_in_a_group_returns_the_list(worker):
    wf = chain(tasks.add.s(1, 1), group(tasks.mul.s(2), tasks.mul.s(3))).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == [4, 6]


def test_group_of_chains_keeps_member_order(worker):
    wf = group(chain(tasks.add.s(1, 1), tasks.mul.s(10)), tasks.add.s(5, 5)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == [20, 10]


def test_step_options_apply_to_the_step(worker):
    wf = chain(tasks.add.s(1, 1).set(queue="math", priority=5, max_retries=1),
               tasks.add.s(1).set(delay=3600)).apply_async()
    first, second = Job.objects.filter(workflow_id=wf.id).order_by("workflow_step")
    assert (first.queue, first.priority, first.max_retries) == ("math", 5, 1)
    worker.run_until_empty()
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.status == 0 and second.args == "[2, 1]"
    delay = (second.scheduled_at - first.completed_at).total_seconds()
    assert 3590 < delay < 3610  # the delay counts from the release


def test_signature_round_trips_through_json():
    sig = tasks.add.s(1, x=2).set(priority=3)
    data = sig.to_dict()
    assert Signature.from_dict(data) == sig
    assert tasks.add.si(1).immutable


def test_delay_is_apply_async(worker):
    wf = chain(tasks.add.s(2, 2)).delay()
    worker.run_until_empty()
    assert wf.result(timeout=5) == 4


def test_get_workflow(worker):
    wf = chain(tasks.add.s(1, 2)).apply_async()
    assert tasks.queue.get_workflow(wf.id) == wf
    assert tasks.queue.get_workflow(uuid.uuid4()) is None
    assert tasks.queue.get_workflow("garbage") is None


def test_to_dict_names_steps_and_result(worker):
    wf = chain(tasks.add.s(1, 2), tasks.mul.s(2)).apply_async()
    worker.run_until_empty()
    data = wf.refresh().to_dict()
    assert data["id"] == str(wf.id) and data["status"] == "complete" and data["result"] == 6
    assert [(s["task_name"], s["status"]) for s in data["steps"]] == [
        (tasks.add.name, "complete"), (tasks.mul.name, "complete")]


# -- bad input: refused, nothing written -------------------------------------------------------
@pytest.mark.parametrize("make, error", [
    (lambda: chain(tasks.add.s(1, 2), Signature("no.such.task")), TaskNotRegistered),
    (lambda: chain(tasks.add.s(1, object())), SerializationError),
    (lambda: group(tasks.noop.si() for _ in range(MAX_GROUP + 1)), ValueError),
    (lambda: group(), ValueError),
])
def test_bad_workflow_is_refused_and_nothing_is_written(make, error):
    with pytest.raises(error):
        make().apply_async()
    assert not Job.objects.exists() and not Workflow.objects.exists()


@pytest.mark.parametrize("option", ["eta", "expires", "unique_key", "depends_on", "bogus"])
def test_set_refuses_options_a_step_cannot_take(option):
    with pytest.raises(ValueError, match=option):
        tasks.add.s(1, 2).set(**{option: 1})


def test_rolled_back_caller_transaction_leaves_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        chord([tasks.add.s(1, 1)], tasks.tsum.s()).apply_async()
        raise RuntimeError("the caller's request failed")
    assert not Job.objects.exists() and not Workflow.objects.exists()


# -- failure, resume, cancel ---------------------------------------------------------------------
def test_dead_step_fails_the_workflow_and_cancels_the_rest(worker):
    wf = chain(tasks.add.s(1, 1), tasks.fatal.si(), tasks.add.s(1), tasks.add.s(1)).apply_async()
    worker.run_until_empty()
    assert wf.refresh().status == "failed"
    assert _statuses(wf) == ["complete", "dead", "cancelled", "cancelled"]
    with pytest.raises(MaxRetriesExceededError):
        wf.result(timeout=5)


def test_dead_header_member_cancels_the_chord_body_but_not_its_siblings(worker):
    wf = chord([tasks.fatal.si(), tasks.add.s(1, 1)], tasks.tsum.s()).apply_async()
    worker.run_until_empty()
    assert _statuses(wf) == ["dead", "complete", "cancelled"]
    assert wf.status == "failed"


def test_retry_dead_resumes_the_workflow(worker, queue, tmp_path: Path):
    flag = tmp_path / "fixed"
    wf = chain(tasks.add.s(1, 1), tasks.fails_unless.si(str(flag), 5),
               tasks.mul.s(2), tasks.add.s(1)).apply_async()
    worker.run_until_empty()
    assert wf.refresh().status == "failed"
    flag.touch()
    (dead,) = DeadLetter.objects.all()
    queue.retry_dead(dead.id)
    assert wf.refresh().status == "running"
    assert _statuses(wf) == ["complete", "pending", "pending", "pending"]
    worker.run_until_empty()
    assert wf.result(timeout=5) == 11
    # 4 steps, plus copies of the dead one and of the two it had cancelled
    assert Job.objects.filter(workflow_id=wf.id).count() == 7


def test_replay_of_the_dead_step_resumes_the_chord(worker, queue, tmp_path: Path):
    flag = tmp_path / "fixed"
    wf = chord([tasks.fails_unless.si(str(flag), 5), tasks.add.s(1, 1)],
               tasks.tsum.s()).apply_async()
    worker.run_until_empty()
    dead_step = wf.refresh().jobs[0]
    flag.touch()
    queue.replay(dead_step.id)
    worker.run_until_empty()
    assert wf.result(timeout=5) == 7


def test_cancel_cancels_pending_steps_and_asks_running_ones_to_stop(engine, worker):
    wf = chain(tasks.noop.si(), tasks.noop.si(), tasks.noop.si()).apply_async()
    (first,) = engine.claim(worker_id="other", limit=10)
    assert wf.cancel() == 3
    assert wf.refresh().status == "cancelled"
    assert _statuses(wf) == ["running", "cancelled", "cancelled"]
    assert Job.objects.get(id=first.id).cancel_requested
    assert wf.cancel() == 0  # no longer active
    with pytest.raises(TaskCancelledError):
        wf.result(timeout=5)


def test_parent_result_that_is_null_is_passed_as_none(worker):
    wf = chain(tasks.noop.s(), tasks.echo.s(1)).apply_async()
    worker.run_until_empty()
    assert wf.result(timeout=5) == {"args": [None, 1], "kwargs": {}}


def test_plain_jobs_take_no_workflow_statement(worker, count_queries):
    tasks.add.delay(1, 2)
    with count_queries() as log:
        worker.run_until_empty()
    assert not any("taskito_workflow" in sql for sql in log)


@pytest.mark.django_db(transaction=True)
def test_aapply_async_and_aresult(worker):
    wf = asyncio.run(chain(tasks.add.s(1, 2), tasks.mul.s(2)).aapply_async())
    assert isinstance(wf, WorkflowResult)
    with pytest.raises(TimeoutError):
        asyncio.run(wf.aresult(timeout=0.2))
    worker.run_until_empty()
    assert asyncio.run(wf.aresult(timeout=5)) == 6
    assert asyncio.run(tasks.queue.aget_workflow(wf.id)) == wf


def test_cancelling_one_pending_step_cancels_its_workflow(worker):
    wf = chain(tasks.add.s(1, 1), tasks.add.s(1), tasks.add.s(1)).apply_async()
    worker.run_once()
    assert wf.refresh().jobs[1].cancel()
    assert wf.refresh().status == "cancelled"
    assert _statuses(wf) == ["complete", "cancelled", "cancelled"]


def test_purge_completed_takes_finished_workflows_with_their_steps(worker, queue):
    wf = chain(tasks.add.s(1, 1), tasks.add.s(1)).apply_async()
    worker.run_until_empty()
    assert queue.purge_completed(older_than=0) == 2
    assert queue.get_workflow(wf.id) is None


def test_test_mode_runs_every_step_at_once():
    with tasks.queue.test_mode() as ran:
        wf = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.mul.s(3)).apply_async()
        assert wf.status == "complete" and wf.result(timeout=1) == 39
        body = chord([tasks.add.s(i, i) for i in range(3)], tasks.tsum.s()).apply_async()
        assert body.result(timeout=1) == 6
    assert [job.task_name for job in ran[:3]] == [tasks.add.name, tasks.add.name,
                                                    tasks.mul.name]
    assert len(ran) == 3 + 4


def test_test_mode_propagates_a_dead_step_and_cancels_the_rest(tmp_path: Path):
    flag = tmp_path / "never"
    with tasks.queue.test_mode(propagate_errors=True), pytest.raises(Exception,
                                                                       match="is missing"):
        chain(tasks.fails_unless.si(str(flag), 1), tasks.add.s(1)).apply_async()
    wf = WorkflowResult(tasks.queue, Workflow.objects.get().id)
    assert wf.status == "failed"
    assert _statuses(wf) == ["dead", "cancelled"]
