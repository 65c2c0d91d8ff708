"""Fixtures for the HTTP surfaces: users, a DRF client, a FastAPI client, jobs in every state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from taskito import JobResult
from taskito.queue import Queue
from taskito.runtime.worker import Worker
from tests.testapp import tasks

PREFIX = "/tasks"


#: what an operator holds: every permission the HTTP API asks for (the admin's)
OPERATOR_PERMISSIONS = ("view_job", "change_job", "view_deadletter", "change_deadletter")


def grant(user: User, *codenames: str) -> User:
    """`user` with taskito's permissions of these codenames (fetched again: perms cache)."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="taskito",
                                                         codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def staff(db: None) -> User:
    """A staff user with the permissions an operator of the API needs."""
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    return grant(user, *OPERATOR_PERMISSIONS)


@pytest.fixture
def bare_staff(db: None) -> User:
    """A staff user without any taskito permission (the admin shows them nothing)."""
    return User.objects.create_user("bare", password="pw", is_staff=True)


@pytest.fixture
def member(db: None) -> User:
    return User.objects.create_user("member", password="pw")


@pytest.fixture
def api(staff: User) -> Client:
    """A Django test client logged in as staff (CSRF checks on, as in production)."""
    client = Client(enforce_csrf_checks=False)
    client.force_login(staff)
    return client


@pytest.fixture
def fastapi_client(queue: Queue) -> Iterator[Any]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from taskito.contrib.fastapi import TaskitoRouter

    app = FastAPI()
    app.include_router(TaskitoRouter(queue), prefix=PREFIX)
    with TestClient(app) as client:
        yield client


@dataclass
class Jobs:
    completed: JobResult
    dead: JobResult
    pending: JobResult
    running: JobResult


@pytest.fixture
def make_jobs(engine, queue: Queue, worker: Worker) -> Callable[[], Jobs]:
    """A completed job with progress and logs, a dead one (with a dead letter and an error),
    a delayed pending one (a second make() does not run it) and a running one
    (claimed, not executed)."""

    def make() -> Jobs:
        completed = tasks.reports.apply_async(args=(2,), metadata={"user": 7})
        dead = tasks.fatal.delay()
        worker.run_until_empty()
        pending = tasks.add.apply_async(args=(1, 2), queue="later", delay=3600)
        running = tasks.noop.apply_async(queue="claimed")
        claimed = engine.claim(worker_id="api-tests", limit=10, queues=["claimed"])
        assert [c.id for c in claimed] == [running.id]
        return Jobs(completed, dead, pending, running)

    return make


def dead_letter_id(queue: Queue, job: JobResult) -> str:
    for letter in queue.dead_letters(limit=100):
        if letter["original_job_id"] == str(job.id):
            return str(letter["id"])
    raise AssertionError(f"no dead letter for {job.id}")
