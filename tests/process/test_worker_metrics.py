"""`taskito_worker --metrics-port`: a real worker process serves its own series over HTTP,
scraped and parsed with prometheus_client's parser; the counts are exact, also when the jobs
run in `--pool process` children (their outcomes are counted in the parent)."""

from __future__ import annotations

import re
import signal
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskito import queue
from tests.conftest import wait_for
from tests.process.conftest import Spawn
from tests.process.helpers import Proc, free_port, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def runs(samples: Samples) -> dict[tuple[str, str], float]:
    """taskito_task_runs_total as {(short task name, status): count}."""
    return {(dict(labels)["task"].rsplit(".", 1)[-1], dict(labels)["status"]): value
            for (name, labels), value in samples.items() if name == "taskito_task_runs_total"}


def by_task(samples: Samples, metric: str) -> dict[str, float]:
    return {dict(labels)["task"].rsplit(".", 1)[-1]: value
            for (name, labels), value in samples.items() if name == metric}


def scrape_until(url: str, expected: dict[tuple[str, str], float]) -> Samples:
    """Scrape until the run counts are `expected` (they only grow: a count past it fails at
    the end of the wait, with the last scrape shown)."""
    last: list[Samples] = [{}]

    def reached() -> Samples | None:
        last[0] = scrape(url)
        return last[0] if runs(last[0]) == expected else None

    try:
        return wait_for(reached, timeout=60)
    except AssertionError:
        raise AssertionError(f"runs {runs(last[0])}, expected {expected}") from None


def metrics_url(worker: Proc) -> str:
    """The URL the worker's banner names, on the loopback address."""
    found = wait_for(lambda: re.search(r"metrics: +http://[^:]+:(\d+)/metrics", worker.stdout)
                     or worker.popen.poll() is not None, timeout=60)
    assert found is not True, worker.describe()
    return f"http://127.0.0.1:{found.group(1)}/metrics"


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_worker_serves_exact_counts_of_its_outcomes(spawn: Spawn, tmp_path: Path, pool):
    started = tmp_path / "started"
    for i in range(5):
        tasks.add.delay(i, i)
    tasks.always_fails.delay()  # retry, retry, dead
    tasks.fatal.delay()  # dead at once
    cancelled = tasks.runs_until_cancelled.delay(str(started))
    port = 0 if pool == "process" else free_port()
    worker = spawn("w", worker_argv("--pool", pool, "--concurrency", "2", "--metrics-port",
                                    str(port), "--metrics-host", "127.0.0.1"))
    url = metrics_url(worker)
    if port:
        assert url == f"http://127.0.0.1:{port}/metrics"
    wait_for(started.exists, timeout=60)

    # everything but the cancellable job has finished; that one holds a slot
    expected = {("add", "complete"): 5, ("always_fails", "retry"): 2,
                ("always_fails", "dead"): 1, ("fatal", "dead"): 1}
    samples = scrape_until(url, expected)
    assert samples[("taskito_worker_busy_slots", ())] == 1
    assert by_task(samples, "taskito_task_retries_total") == {"always_fails": 2}
    assert by_task(samples, "taskito_task_duration_seconds_count") == {
        "add": 5, "always_fails": 3, "fatal": 1}

    assert queue.cancel_running_job(cancelled.id)
    expected[("runs_until_cancelled", "cancelled")] = 1
    samples = scrape_until(url, expected)
    assert samples[("taskito_worker_busy_slots", ())] == 0
    assert by_task(samples, "taskito_task_duration_seconds_count")["runs_until_cancelled"] == 1
    assert cancelled.refresh().status == "cancelled"

    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker.describe()
    assert runs(samples) == expected  # nothing counted twice on the way out


def test_a_taken_port_stops_the_worker_with_one_line(spawn: Spawn):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = spawn("w", worker_argv("--burst", "--metrics-port", str(port),
                                        "--metrics-host", "127.0.0.1"))
        assert worker.wait(timeout=60) == 1
    assert worker.stderr.strip().splitlines() == [
        f"CommandError: --metrics-port: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"]
