"""Progress streams as deployed: `uvicorn --workers 2` serving the tests' project, a
`taskito_worker` process writing the progress, and a client reading the stream over HTTP;
once through the relay (the default) and once through django-eventstream's Redis transport."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskito.contrib.sse import progress_url
from tests.conftest import child_env, wait_for
from tests.helpers.processes import Launcher
from tests.helpers.services import REDIS, redis_client
from tests.helpers.sse import events_in
from tests.process.helpers import Proc, answers, free_port, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

DEADLINE = 30.0


@pytest.fixture(params=["relay", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Proc]]:
    """(base URL, worker process): uvicorn with two web processes and one taskito_worker,
    sharing the test database (and Redis in the "redis" variant)."""
    extra: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
    if request.param == "redis":
        redis_client().close()  # answers a ping, or the test skips (fails in CI)
        extra["TASKITO_TEST_EVENTSTREAM_REDIS"] = json.dumps(REDIS)
    env = child_env(**extra)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launcher = Launcher(tmp_path, env=env)
    server = launcher.start("uvicorn", [
        sys.executable, "-m", "uvicorn", "tests.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--timeout-graceful-shutdown", "2"])
    worker = launcher.start("worker", worker_argv())
    try:
        wait_for(lambda: server.popen.poll() is not None or answers(url + "/tasks/health"),
                 timeout=30)
        assert server.popen.poll() is None, server.describe()
        yield url, worker
    finally:
        launcher.stop(graceful=True)


def read_events(response: Any) -> Iterator[dict[str, Any]]:
    """The data of each `message` event of an open stream, as it arrives."""
    for item in events_in(response.iter_lines(), DEADLINE):
        if not isinstance(item, str) and item.kind == "message":
            yield item.data


def test_a_browser_style_client_follows_a_worker_process(deployment, tmp_path):
    import httpx

    url, worker = deployment
    job = tasks.progress_steps.delay(str(tmp_path), 2)
    seen: list[dict[str, Any]] = []
    with httpx.stream("GET", url + progress_url(job.id) + "&partial=1", timeout=DEADLINE,
                      headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, response.read()
        for event in read_events(response):
            seen.append(event)
            if event["status"] == "running" and event["progress"] > 0:
                (tmp_path / str(event["partial"]["step"])).touch()  # next step
        # the loop ends because the server ended the stream after "complete"
    assert seen[-1] == {"status": "complete", "progress": 100, "partial": {"step": 2}}
    assert {"status": "running", "progress": 50, "partial": {"step": 1}} in seen
    assert all(a != b for a, b in itertools.pairwise(seen)), seen
    assert worker.popen.poll() is None, worker.describe()
    assert os.path.exists(tmp_path / "2")
