"""GET /tasks/jobs/<id>/progress (taskito.contrib.sse): refusals answered before streaming,
and streams read chunk by chunk through the async client, with progress written by a real
worker subprocess and carried to the stream by the relay."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import run_checks
from django.test import Client, override_settings

from taskito.contrib.sse import channel_for, progress_token, progress_url
from taskito.contrib.sse.relay import relay
from taskito.contrib.sse.views import _rewrite
from taskito.states import JobStatus
from tests.conftest import ROOT, child_env
from tests.helpers.services import REDIS, redis_client
from tests.helpers.sse import messages_of
from tests.testapp import tasks

DEADLINE = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stopped_relay() -> Iterator[None]:
    """The relay thread is stopped after the test (it closes its database connection)."""
    yield
    relay.stop()


class Events:
    """The progress events of an open stream, read chunk by chunk with a deadline."""

    def __init__(self, response: Any) -> None:
        self.chunks: AsyncIterator[bytes] = aiter(response.streaming_content)
        self.states: list[dict[str, Any]] = []
        self.text = ""
        self.ended = False

    async def _chunk(self) -> bool:
        try:
            chunk = await asyncio.wait_for(anext(self.chunks), DEADLINE)
        except StopAsyncIteration:
            self.ended = True
            return False
        text = chunk.decode()
        self.text += text
        self.states += messages_of(text)  # the stream sends whole events per chunk
        return True

    async def until(self, status: str, progress: int | None = None) -> dict[str, Any]:
        """Read until an event with this status (and progress) arrives."""
        while True:
            for state in self.states:
                if state["status"] == status and progress in (None, state["progress"]):
                    return state
            if not await self._chunk():
                raise AssertionError(f"stream ended before {status}/{progress}: {self.states}")

    async def end(self) -> None:
        """Read until the server ends the stream."""
        while await self._chunk():
            pass

    async def close(self) -> None:
        """Go away as a client does: the server's task sending the stream is cancelled
        while it waits for the next event (what Django's ASGI handler does on
        http.disconnect)."""
        if not self.ended:
            sending = asyncio.ensure_future(anext(self.chunks))
            await asyncio.sleep(0)  # let it start and block on the next event
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await sending
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def assert_no_repeats(states: list[dict[str, Any]]) -> None:
    for before, after in itertools.pairwise(states):
        assert before != after, states
        assert after["progress"] >= before["progress"] or after["status"] != "running", states


# -- answered before streaming (plain test client) ------------------------------------------
pytestmark = pytest.mark.django_db


def url(job_id: Any) -> str:
    return f"/tasks/jobs/{job_id}/progress"


def test_anonymous_and_members_are_refused(member):
    job = tasks.noop.delay()
    assert Client().get(url(job.id)).status_code in (401, 403)
    client = Client()
    client.force_login(member)
    response = client.get(url(job.id))
    assert response.status_code == 403 and "detail" in response.json()


def test_a_token_opens_only_its_own_job(member, completed_job):
    """User A (not staff) holds a token for A's job: it opens that stream and no other."""
    mine, other = completed_job(), completed_job()
    client = Client()
    client.force_login(member)
    response = client.get(url(mine.id), {"token": progress_token(mine.id)})
    assert response.status_code == 200 and b'"status": "complete"' in response.content
    forged = progress_token(mine.id)[:-2] + "xx"
    for token, detail in ((progress_token(mine.id), "another job"), (forged, "not valid"),
                          ("nonsense", "not valid")):
        response = client.get(url(other.id), {"token": token})
        assert response.status_code == 403
        assert detail in response.json()["detail"]


def test_an_expired_token_is_refused():
    job = tasks.noop.delay()
    token = progress_token(job.id)
    with override_settings(TASKITO={"SSE_TOKEN_MAX_AGE": 1e-6}):
        response = Client().get(url(job.id), {"token": token})
    assert response.status_code == 403
    assert response.json() == {"detail": "the progress token has expired"}


def test_unknown_and_malformed_jobs_are_404(api):
    for job_id in (uuid.uuid4(), "not-a-uuid"):
        response = api.get(url(job_id))
        assert response.status_code == 404
        assert response.json() == {"detail": f"job {job_id} not found"}


def test_a_token_for_a_purged_job_is_404(queue):
    job = tasks.noop.delay()
    token = progress_token(job.id)
    queue.job_model.objects.filter(id=job.id).delete()
    assert Client().get(url(job.id), {"token": token}).status_code == 404


def test_bad_requests_are_4xx_json(api):
    job = tasks.noop.delay()
    assert api.post(url(job.id)).status_code == 405
    response = api.get(url(job.id), {"es-meta": "x"})
    assert response.status_code == 400 and response.json()["detail"].startswith("es-meta")


def test_eventsource_accept_header_is_not_a_406(api, completed_job):
    job = completed_job()
    response = api.get(url(job.id), HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    response = api.get(url(uuid.uuid4()), HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)  # the result view reads from another thread
def test_atomic_requests_do_not_break_the_async_views(api, completed_job, monkeypatch):
    from django.db import connections

    job = completed_job()
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    assert api.get(url(job.id)).status_code == 200
    assert api.get(f"/tasks/jobs/{job.id}/result").status_code == 200


def test_a_finished_job_answers_its_state_and_ends(api, completed_job):
    response = api.get(url(completed_job().id))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    body = response.content.decode()
    assert body == 'event: message\ndata: {"status": "complete", "progress": 100}\n\n'


def test_under_wsgi_an_active_job_is_501_not_a_hung_stream(api):
    job = tasks.noop.delay()
    response = api.get(url(job.id))  # the sync test client is a WSGI request
    assert response.status_code == 501
    assert "ASGI" in response.json()["detail"]


def test_progress_url_carries_a_token_that_opens_the_stream(completed_job):
    job = completed_job()
    path = progress_url(job.id)
    assert path.startswith(url(job.id) + "?token=")
    assert progress_url(job.id, token=False) == url(job.id)
    assert Client().get(path).status_code == 200


@pytest.mark.urls("tests.urls_rest_only")
def test_the_rest_include_alone_serves_the_stream(completed_job):
    job = completed_job()
    path = progress_url(job.id)
    assert path.startswith(f"/api/jobs/{job.id}/progress?token=")
    response = Client().get(path)
    assert response.status_code == 200
    assert b'"status": "complete"' in response.content


def test_events_never_carry_arguments_or_results(api, queue, worker):
    job = tasks.echo.delay("secret-argument")
    worker.run_until_empty()
    body = api.get(url(job.id)).content.decode()
    assert "secret" not in body
    data = json.loads(body.split("data: ", 1)[1])
    assert set(data) == {"status", "progress"}


def test_rewrite_drops_repeats_and_partials_not_asked_for():
    last = {"status": "running", "progress": 10}
    chunk = ('event: message\ndata: {"status": "running", "progress": 10, "partial": 1}\n\n'
             "event: keep-alive\ndata:\n\n"
             'event: message\ndata: {"status": "running", "progress": 20, "partial": 2}\n\n')
    text, last = _rewrite(chunk, last, with_partial=False)
    assert last == {"status": "running", "progress": 20}
    assert text == ("event: keep-alive\ndata:\n\n"
                    'event: message\ndata: {"status": "running", "progress": 20}\n\n')


def test_rewrite_keeps_the_last_partial_when_an_event_has_none():
    last = {"status": "running", "progress": 10, "partial": {"rows": 5}}
    chunk = 'event: message\ndata: {"status": "complete", "progress": 100}\n\n'
    text, last = _rewrite(chunk, last, with_partial=True)
    assert last == {"status": "complete", "progress": 100, "partial": {"rows": 5}}
    assert json.loads(text.split("data: ")[1]) == last


def test_partial_results_only_when_asked(engine, api, queue, worker):
    job = tasks.progress_then_read.delay(40)
    claimed = engine.claim(worker_id="sse-tests", limit=1)[0]
    assert engine.set_progress(claimed.id, claimed.token, 60, partial={"rows": [1, 2]})
    queue.job_model.objects.filter(id=job.id).update(status=JobStatus.CANCELLED)
    plain = api.get(url(job.id)).content.decode()
    assert "partial" not in plain and '"progress": 60' in plain
    asked = api.get(url(job.id), {"partial": "true"}).content.decode()
    assert json.loads(asked.split("data: ", 1)[1]) == {
        "status": "cancelled", "progress": 60, "partial": {"rows": [1, 2]}}
    response = api.get(url(job.id), {"partial": "maybe"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("partial must be true or false")


def test_a_partial_result_must_be_json(engine, queue):
    from taskito.exceptions import SerializationError

    job = tasks.noop.delay()
    claimed = engine.claim(worker_id="sse-tests", limit=1)[0]
    with pytest.raises(SerializationError, match="partial result"):
        engine.set_progress(claimed.id, claimed.token, 10, partial=object())
    assert queue.job_progress([job.id], partial=True)[job.id] == (JobStatus.RUNNING, 0, None)


# -- the relay --------------------------------------------------------------------------------
def test_the_relay_is_not_started_by_django_setup():
    code = ("import django, threading; django.setup(); "
            "from taskito.contrib.sse.relay import relay; "
            "assert not relay.running; "
            "assert 'taskito-sse-relay' not in [t.name for t in threading.enumerate()]")
    subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=ROOT, check=True,
                   timeout=60)


def test_a_relay_poll_is_one_query_whatever_the_number_of_jobs(django_assert_num_queries,
                                                               stopped_relay):
    from taskito.contrib.sse.relay import Relay

    quiet = Relay()
    with django_assert_num_queries(0):
        assert quiet.poll_once() == 0  # nothing watched: no query at all
    jobs = [tasks.noop.delay() for _ in range(10)]
    for job in jobs:
        quiet._watchers[job.id] = 1  # watched, without starting its thread
    with django_assert_num_queries(1):
        assert quiet.poll_once() == 10  # first sight of each job: published once
    with django_assert_num_queries(1):
        assert quiet.poll_once() == 0  # nothing changed: nothing published


def test_the_checks_warn_about_wsgi_only_setups():
    with override_settings(ASGI_APPLICATION=None):
        ids = [m.id for m in run_checks()]
    assert "taskito_sse.W001" in ids
    assert "taskito_sse.W001" not in [m.id for m in run_checks()]


# -- streams ----------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_stream_follows_a_worker_subprocess(async_client, start_worker, tmp_path,
                                                    stopped_relay):
    job = await sync_to_async(tasks.progress_steps.delay)(str(tmp_path), 3)
    response = await async_client.get(progress_url(job.id))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = Events(response)
    # a second watcher, which also asks for the partial results
    second = Events(await async_client.get(progress_url(job.id) + "&partial=1"))
    try:
        assert await events.until("pending") == {"status": "pending", "progress": 0}
        assert relay.running and job.id in relay.watched()
        start_worker()
        for step, progress in enumerate((33, 66, 100), start=1):
            await events.until("running", progress)
            assert (await second.until("running", progress))["partial"] == {"step": step}
            (tmp_path / str(step)).touch()
        assert await events.until("complete") == {"status": "complete", "progress": 100}
        await events.end()
        await second.end()
    finally:
        await events.close()
        await second.close()
    assert events.ended and second.ended
    assert events.states[-1] == {"status": "complete", "progress": 100}
    assert second.states[-1] == {"status": "complete", "progress": 100, "partial": {"step": 3}}
    assert all("partial" not in state for state in events.states)
    for stream in (events, second):
        assert_no_repeats(stream.states)
        assert "stream-open" in stream.text
        assert "secret" not in stream.text and "traceback" not in stream.text.lower()
    assert job.id not in relay.watched()  # both streams ended: the relay forgets the job


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_cancelled_job_ends_its_stream(async_client, queue, stopped_relay):
    job = await sync_to_async(tasks.noop.delay)()
    events = Events(await async_client.get(progress_url(job.id)))
    try:
        await events.until("pending")
        assert await queue.acancel_job(job.id)
        assert await events.until("cancelled") == {"status": "cancelled", "progress": 0}
        await events.end()
    finally:
        await events.close()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_client_that_goes_away_stops_being_watched(async_client, stopped_relay):
    job = await sync_to_async(tasks.noop.delay)()
    events = Events(await async_client.get(progress_url(job.id)))
    await events.until("pending")
    assert job.id in relay.watched()
    await events.close()
    assert job.id not in relay.watched()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_with_redis_transport_the_web_process_runs_no_relay(async_client, settings,
                                                                  stopped_relay):
    settings.EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": 6379}
    job = await sync_to_async(tasks.noop.delay)()
    events = Events(await async_client.get(progress_url(job.id)))
    try:
        await events.until("pending")
        assert job.id not in relay.watched()
    finally:
        await events.close()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_django_eventstream_internals_the_view_relies_on(async_client, stopped_relay):
    """The relay publishes with send_event to the listeners of django-eventstream's listener
    manager; pinned to 5.3.x. This fails first when that changes."""
    from django_eventstream import send_event
    from django_eventstream.views import get_listener_manager

    job = await sync_to_async(tasks.noop.delay)()
    channel = channel_for(job.id)
    events = Events(await async_client.get(progress_url(job.id)))
    try:
        await events.until("pending")
        assert channel in get_listener_manager().listeners_by_channel
        await sync_to_async(send_event)(channel, "message", {"status": "running",
                                                             "progress": 5})
        assert await events.until("running", 5)
    finally:
        await events.close()
    assert channel not in get_listener_manager().listeners_by_channel


# -- with django-eventstream's Redis transport, the worker publishes --------------------------

@pytest.mark.django_db(transaction=True)
def test_with_redis_transport_the_worker_publishes_each_change_once():
    client = redis_client()
    pubsub = client.pubsub()
    pubsub.subscribe("events_channel")  # django-eventstream's one Redis channel
    try:
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        job = tasks.reports.delay(4)
        worker = subprocess.run(
            [sys.executable, "-m", "django", "taskito_worker", "--burst"], cwd=ROOT,
            env=child_env(TASKITO_TEST_EVENTSTREAM_REDIS=json.dumps(REDIS)),
            capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr
        states = []
        while not states or states[-1]["status"] != "complete":
            message = pubsub.get_message(timeout=DEADLINE)
            assert message is not None, f"no more events after {states}"
            event = json.loads(message["data"])
            if event["channel"] == channel_for(job.id):
                assert event["event_type"] == "message"
                states.append(json.loads(event["data"]))
    finally:
        pubsub.close()
    assert states == [{"status": "running", "progress": p} for p in (0, 25, 50, 75, 100)] + [
        {"status": "complete", "progress": 100}]


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_last_event_id_this_stream_never_sent_is_a_400(async_client):
    job = await sync_to_async(tasks.noop.delay)()
    response = await async_client.get(progress_url(job.id),
                                      headers={"Last-Event-ID": f"{channel_for(job.id)}:abc"})
    assert response.status_code == 400
    assert "Last-Event-ID" in json.loads(response.content)["detail"]


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_closing_the_response_stops_the_watch(async_client, stopped_relay):
    """Django closes every response when it is done, also when the client went away while a
    chunk was being sent (the stream's generator is then never resumed)."""
    job = await sync_to_async(tasks.noop.delay)()
    response = await async_client.get(progress_url(job.id))
    events = Events(response)
    await events.until("pending")
    assert job.id in relay.watched()
    await sync_to_async(response.close)()
    assert job.id not in relay.watched()
    await events.close()
