"""taskito.states: names, codes and the allowed transitions."""

from __future__ import annotations

import pytest

from taskito.states import ACTIVE, STATS_KEYS, TERMINAL, TRANSITIONS, JobStatus, can_move


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pending", JobStatus.PENDING),
        ("RUNNING", JobStatus.RUNNING),
        (" complete ", JobStatus.COMPLETE),
        ("completed", JobStatus.COMPLETE),
        ("dead", JobStatus.DEAD),
        ("cancelled", JobStatus.CANCELLED),
    ],
)
def test_parse_accepts_names(value, expected):
    assert JobStatus.parse(value) is expected


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5])
def test_parse_accepts_codes(code):
    assert JobStatus.parse(code) == code


def test_parse_returns_a_member_unchanged():
    assert JobStatus.parse(JobStatus.DEAD) is JobStatus.DEAD


@pytest.mark.parametrize("value", ["bogus", "", 6, -1, True, None, 1.0])
def test_parse_rejects_unknown_values(value):
    with pytest.raises(ValueError):
        JobStatus.parse(value)


def test_parse_error_lists_the_valid_names():
    with pytest.raises(ValueError, match="pending, running, complete, failed, dead, cancelled"):
        JobStatus.parse("bogus")


def test_label_is_the_lower_case_name():
    assert [s.label for s in JobStatus] == [
        "pending", "running", "complete", "failed", "dead", "cancelled"]


def test_codes_are_the_stored_integers():
    assert [int(s) for s in JobStatus] == [0, 1, 2, 3, 4, 5]


def test_terminal_set_is_complete_failed_dead_cancelled():
    assert frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.DEAD,
                      JobStatus.CANCELLED}) == TERMINAL


def test_active_and_terminal_partition_every_status():
    assert set(JobStatus) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_transitions_terminal_statuses_have_no_successor(status):
    assert TRANSITIONS[status] == frozenset()
    assert not any(can_move(status, other) for other in JobStatus)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (JobStatus.PENDING, JobStatus.RUNNING),  # claim
        (JobStatus.PENDING, JobStatus.CANCELLED),  # cancel_job
        (JobStatus.PENDING, JobStatus.DEAD),  # lost worker out of attempts
        (JobStatus.RUNNING, JobStatus.COMPLETE),
        (JobStatus.RUNNING, JobStatus.PENDING),  # retry
        (JobStatus.RUNNING, JobStatus.DEAD),
        (JobStatus.RUNNING, JobStatus.CANCELLED),
    ],
)
def test_can_move_allows_lifecycle_steps(current, new):
    assert can_move(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (JobStatus.PENDING, JobStatus.COMPLETE),  # a job must run before it completes
        (JobStatus.PENDING, JobStatus.PENDING),
        (JobStatus.RUNNING, JobStatus.RUNNING),
        (JobStatus.COMPLETE, JobStatus.PENDING),
        (JobStatus.DEAD, JobStatus.PENDING),  # retry_dead makes a new job instead
    ],
)
def test_can_move_refuses_other_steps(current, new):
    assert not can_move(current, new)


def test_transitions_cover_every_status():
    assert set(TRANSITIONS) == set(JobStatus)


def test_stats_keys_report_complete_as_completed():
    assert list(STATS_KEYS.values()) == [
        "pending", "running", "completed", "failed", "dead", "cancelled"]


def test_requeue_leaves_only_terminal_failures_and_cancellations():
    from taskito.states import REQUEUE_FROM

    assert TERMINAL - {JobStatus.COMPLETE} == REQUEUE_FROM
