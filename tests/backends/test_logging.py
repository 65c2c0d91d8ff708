"""The framework's own log line for a FAILED task: at ERROR, without a stray "NoneType: None"
(the django-tasks backport logs it with `logger.exception`, as if inside an `except`)."""

from __future__ import annotations

import logging

import pytest

from tests.backends.framework import LOGGER
from tests.testapp import django_tasks as t

pytestmark = pytest.mark.django_db


def test_failed_task_logs_one_error_line_without_an_empty_traceback(worker, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    result = t.failing_task_value_error.enqueue()

    assert worker.run_once() == 1

    failed = [r for r in caplog.records
              if r.name == LOGGER and "state=FAILED" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR], caplog.text
    assert result.id in failed[0].getMessage()
    assert "NoneType: None" not in caplog.text
