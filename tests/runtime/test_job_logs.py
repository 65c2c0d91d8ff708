"""The operator's log: one `key=value` line per job event on `taskito.job`, and `-v` levels
for projects that do not configure taskito's loggers."""

from __future__ import annotations

import logging
import re

import pytest

from taskito.models import DeadLetter
from taskito.runtime import logs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _lines(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "taskito.job" and r.getMessage().startswith(word + " ")]


def test_a_successful_job_logs_received_and_succeeded_at_info(worker, caplog):
    job = tasks.add.delay(1, 2)
    with caplog.at_level(logging.INFO, logger="taskito"):
        worker.run_once()

    [received] = _lines(caplog, "received")
    [succeeded] = _lines(caplog, "succeeded")
    assert received.levelno == succeeded.levelno == logging.INFO
    assert received.getMessage() == (f"received job={job.id} task={tasks.add.name} "
                                     "queue=default attempt=1")
    assert re.fullmatch(rf"succeeded job={job.id} task={re.escape(tasks.add.name)} attempt=1 "
                        r"duration=\d+\.\d{3}s", succeeded.getMessage())


def test_a_job_sent_back_to_pending_is_not_received(queue, worker, caplog):
    queue.enqueue("tests.not_deployed_yet")
    with caplog.at_level(logging.INFO, logger="taskito"):
        assert worker.run_once() == 0
    assert not _lines(caplog, "received")


def test_a_retried_attempt_logs_retried_at_warning_with_the_error(worker, caplog):
    job = tasks.always_fails.delay("nope")
    with caplog.at_level(logging.INFO, logger="taskito"):
        worker.run_once()

    [retried] = _lines(caplog, "retried")
    assert retried.levelno == logging.WARNING
    assert re.fullmatch(rf"retried job={job.id} task=\S+ attempt=1 duration=\S+s "
                        r"retry_in=0\.00s error='Retryable: nope'", retried.getMessage())


def test_retries_used_up_log_dead_with_the_dead_letter(worker, caplog):
    job = tasks.always_fails.delay()
    with caplog.at_level(logging.INFO, logger="taskito"):
        worker.run_until_empty()

    assert len(_lines(caplog, "retried")) == 2
    [dead] = _lines(caplog, "dead")
    letter = DeadLetter.objects.get(original_job_id=job.id)
    assert dead.levelno == logging.ERROR
    assert f"job={job.id} " in dead.getMessage() and "attempt=3 " in dead.getMessage()
    assert f"dead_letter={letter.id} " in dead.getMessage()


def test_an_error_that_is_not_retried_logs_failed(worker, caplog):
    job = tasks.fatal.delay()
    with caplog.at_level(logging.INFO, logger="taskito"):
        worker.run_once()

    [failed] = _lines(caplog, "failed")
    assert failed.levelno == logging.ERROR
    assert f"job={job.id} " in failed.getMessage() and "error='Fatal" in failed.getMessage()
    assert not _lines(caplog, "dead")


def test_info_lines_are_not_built_when_info_is_disabled(worker, caplog):
    tasks.add.delay(1, 2)
    tasks.fatal.delay()
    with caplog.at_level(logging.WARNING, logger="taskito"):
        worker.run_until_empty()
    assert not _lines(caplog, "received") and not _lines(caplog, "succeeded")
    assert len(_lines(caplog, "failed")) == 1


def test_worker_start_and_stop_are_logged_on_taskito_worker(queue, caplog):
    from taskito.runtime.worker import Worker

    tasks.add.delay(1, 1)
    with caplog.at_level(logging.INFO, logger="taskito"):
        Worker(queue, burst=True, worker_id="w-log", concurrency=1).run()
    messages = [r.getMessage() for r in caplog.records if r.name == "taskito.worker"]
    assert messages[0].startswith("started worker=w-log queues=* concurrency=1 pool=thread")
    assert messages[-1] == "stopped worker=w-log processed=1"


# -- taskito_worker -v ---------------------------------------------------------------------

def test_verbosity_is_left_alone_when_the_project_configured_taskito():
    # tests.settings configures the `taskito` logger in LOGGING
    assert logs.project_configured()
    assert logs.apply_verbosity(2) is False
    assert logging.getLogger("taskito").level == logging.WARNING


@pytest.mark.parametrize(("verbosity", "level"), [(0, logging.WARNING), (1, logging.INFO),
                                                  (2, logging.DEBUG), (3, logging.DEBUG)])
def test_verbosity_maps_to_a_level_when_taskito_is_not_configured(unconfigured, verbosity,
                                                                  level):
    assert not logs.project_configured()
    assert logs.apply_verbosity(verbosity) is True
    assert unconfigured.level == level
    # a second run in the same process (e.g. a restart) may change it again
    assert logs.apply_verbosity(0) is True
    assert unconfigured.level == logging.WARNING


def test_a_level_on_one_named_logger_counts_as_configured(unconfigured):
    job_logger = logging.getLogger("taskito.job")
    job_logger.setLevel(logging.ERROR)
    try:
        assert logs.project_configured()
    finally:
        job_logger.setLevel(logging.NOTSET)
