"""System checks of TASKITO["LISTEN_DATABASE"] (the pooled case, taskito.W003, runs against
a real PgBouncer in tests/process/test_pgbouncer.py)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings

from taskito.checks import check_listen, check_settings


def _ids(messages: list) -> list[str]:
    return [m.id for m in messages]


def test_check_listen_database_must_be_configured():
    with override_settings(TASKITO={"LISTEN_DATABASE": "nowhere"}):
        messages = check_settings()
    assert "taskito.E005" in _ids(messages)
    assert "nowhere" in next(m.msg for m in messages if m.id == "taskito.E005")


def test_check_listen_database_must_be_postgresql():
    with override_settings(TASKITO={"LISTEN_DATABASE": "jobs"}):
        ids = _ids(check_settings())
    if connections["jobs"].vendor == "postgresql":
        assert "taskito.E005" not in ids
    else:
        assert "taskito.E005" in ids


def test_check_listen_database_unset_is_fine():
    assert "taskito.E005" not in _ids(check_settings())


@pytest.mark.django_db
def test_check_listen_queries_only_when_asked_for_the_database():
    assert check_listen(databases=None) == []
    # a direct connection (the test database) is no proxy
    assert check_listen(databases=["default"]) == []
