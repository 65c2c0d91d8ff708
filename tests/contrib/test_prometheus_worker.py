"""taskito.contrib.prometheus.worker and the worker's observer hook, in this process: what
each outcome adds to the series, an observer that raises, and the command's one-line errors
(tests/process/test_worker_metrics.py scrapes a real worker over HTTP)."""

from __future__ import annotations

import io
import logging
import signal
import sys
import urllib.request
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from taskito.conf import validate
from taskito.contrib.prometheus.worker import WorkerMetrics, serve
from taskito.exceptions import ConfigurationError
from taskito.runtime.worker import Worker
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_outcome_counts_once_by_task_and_status(queue):
    metrics = WorkerMetrics()
    tasks.add.delay(1, 2)
    tasks.add.delay(3, 4)
    tasks.always_fails.delay()
    tasks.fatal.delay()
    Worker(queue, concurrency=4, observer=metrics).run_until_empty()
    add, fails, fatal = tasks.add.name, tasks.always_fails.name, tasks.fatal.name
    assert value(metrics, "taskito_task_runs_total", task=add, status="complete") == 2
    assert value(metrics, "taskito_task_runs_total", task=fails, status="retry") == 2
    assert value(metrics, "taskito_task_runs_total", task=fails, status="dead") == 1
    assert value(metrics, "taskito_task_runs_total", task=fatal, status="dead") == 1
    assert value(metrics, "taskito_task_runs_total", task=fatal, status="retry") is None
    assert value(metrics, "taskito_task_retries_total", task=fails) == 2
    assert value(metrics, "taskito_task_retries_total", task=add) is None
    assert value(metrics, "taskito_task_duration_seconds_count", task=fails) == 3
    assert 0 <= value(metrics, "taskito_task_duration_seconds_sum", task=add) < 5
    assert value(metrics, "taskito_worker_busy_slots") == 0


def test_the_series_live_on_their_own_registry_not_the_global_one():
    from prometheus_client import REGISTRY

    WorkerMetrics()
    WorkerMetrics()  # a second one does not collide with the first
    assert REGISTRY.get_sample_value("taskito_worker_busy_slots") is None


def test_serve_answers_the_text_format_on_any_free_port():
    metrics, server = serve(0, "127.0.0.1")
    try:
        metrics.busy.set(3)
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["taskito_worker_busy_slots"].samples[0].value == 3
    assert families["taskito_task_runs"].type == "counter"
    assert families["taskito_task_duration_seconds"].type == "histogram"


def test_an_observer_that_raises_is_logged_and_changes_nothing(queue, caplog):
    def broken(outcomes: Any, busy: int) -> None:
        raise RuntimeError("observer bug")

    jobs = [tasks.add.delay(i, i) for i in range(3)]
    worker = Worker(queue, concurrency=2, burst=True, poll_interval=0.001, observer=broken)
    with caplog.at_level(logging.ERROR, logger="taskito.worker"):
        assert worker.run() == 3
    assert [j.result(timeout=1) for j in jobs] == [0, 2, 4]
    assert "worker observer failed" in caplog.text


def test_the_loop_reports_busy_slots_after_claims_and_batches(queue):
    seen: list[tuple[int, int]] = []
    for i in range(4):
        tasks.add.delay(i, i)
    worker = Worker(queue, concurrency=2, burst=True, poll_interval=0.001,
                    observer=lambda outcomes, busy: seen.append((len(outcomes), busy)))
    assert worker.run() == 4
    assert sum(n for n, _ in seen) == 4
    assert all(0 <= busy <= 2 for _, busy in seen)
    assert any(n == 0 and busy > 0 for n, busy in seen)  # after a claim
    assert seen[-1][1] == 0


# -- the command ---------------------------------------------------------------------------

@pytest.fixture
def no_signals(monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda sig, handler: None)


def worker_command(*args: str) -> str:
    out = io.StringIO()
    call_command("taskito_worker", "--burst", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_setting_turns_the_port_on_and_the_banner_says_where(no_signals, settings):
    settings.TASKITO = {**settings.TASKITO, "METRICS_PORT": 0, "METRICS_HOST": "127.0.0.1"}
    out = worker_command()
    assert "  metrics:     http://127.0.0.1:" in out


def test_without_the_setting_or_flag_no_port_is_served(no_signals):
    assert "metrics:" not in worker_command()


def test_without_prometheus_client_the_flag_is_one_clear_error(no_signals, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "taskito.contrib.prometheus.worker", raising=False)
    with pytest.raises(CommandError, match=r"^--metrics-port needs prometheus_client: pip "
                       r"install 'django-taskito\[prometheus\]'$"):
        worker_command("--metrics-port", "0")


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_a_port_out_of_range_is_refused(no_signals, port):
    with pytest.raises(CommandError, match=r"--metrics-port must be a TCP port \(0 to 65535\)"):
        worker_command("--metrics-port", port)


@pytest.mark.parametrize(("settings_value", "message"), [
    (-1, "must be >= 0"), (70000, "must be a TCP port"), ("9100", "must be int or None")])
def test_the_port_setting_is_validated(settings_value, message):
    with pytest.raises(ConfigurationError, match=message):
        validate({"METRICS_PORT": settings_value})
