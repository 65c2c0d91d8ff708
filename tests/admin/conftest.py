"""Admin fixtures: clients for each kind of user, jobs in each state, and action helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from taskito import JobResult
from taskito.models import DeadLetter, Job
from taskito.runtime.worker import Worker
from tests.testapp import tasks

#: for tests of the actions on an object's own page (Django 6.1's change-form actions)
needs_page_actions = pytest.mark.skipif(
    django.VERSION < (6, 1), reason="actions on an object's own page are new in Django 6.1")

TASKITO_MODELS = ("job", "deadletter", "joberror", "tasklog", "taskmetric", "periodictask",
                  "queuestate")


def staff_client(username: str, *codenames: str) -> Client:
    """A logged-in staff user that holds exactly these taskito permissions."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="taskito",
                                                        codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(admin_client: Client) -> Client:
    return admin_client


@pytest.fixture
def viewer_client(db: Any) -> Client:
    """Staff with only the view permission on every taskito model."""
    return staff_client("viewer", *(f"view_{m}" for m in TASKITO_MODELS))


@pytest.fixture
def make_staff(db: Any) -> Callable[..., Client]:
    return staff_client


@pytest.fixture
def anon_client() -> Client:
    return Client()


# -- jobs in each state, reached through the public API ---------------------------------------

@pytest.fixture
def pending_job(db: Any) -> Callable[..., JobResult]:
    def make(**options: Any) -> JobResult:
        return tasks.noop.apply_async(**options)

    return make


@pytest.fixture
def running_job(engine, queue: Any) -> Callable[..., JobResult]:
    def make(**options: Any) -> JobResult:
        job = tasks.noop.apply_async(**options)
        claimed = engine.claim(worker_id="admin-test", limit=1000)
        assert job.id in {c.id for c in claimed}
        return job

    return make


@pytest.fixture
def dead_letter(worker: Worker) -> Callable[..., DeadLetter]:
    """A job run into the dead-letter queue (not retryable); returns its DeadLetter row."""

    def make(**options: Any) -> DeadLetter:
        job = tasks.fatal.apply_async(**options)
        worker.run_until_empty()
        assert job.refresh().status == "dead"
        return DeadLetter.objects.get(original_job_id=job.id)

    return make


def status_of(job: Any) -> str:
    return Job.objects.get(id=getattr(job, "id", job)).status_label


# -- admin helpers -----------------------------------------------------------------------------

def changelist_url(model: str) -> str:
    return reverse(f"admin:taskito_{model}_changelist")


def change_url(model: str, pk: Any) -> str:
    return reverse(f"admin:taskito_{model}_change", args=[pk])


def run_action(client: Client, model: str, action: str, ids: list[Any],
               **extra: Any) -> Any:
    """POST an action the way the changelist's form does; returns the (followed) response."""
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": "0", **extra}
    return client.post(changelist_url(model), data, follow=True)


def messages_of(response: Any) -> list[str]:
    """The messages shown on the (final) page of a response."""
    if response.context is not None and "messages" in response.context:
        return [str(m) for m in response.context["messages"]]
    return [str(m) for m in get_messages(response.wsgi_request)]


def action_names(response: Any) -> list[str]:
    """The actions the changelist offers (empty when it shows no action form)."""
    form = response.context.get("action_form")
    return [] if form is None else [v for v, _ in form.fields["action"].choices if v]
