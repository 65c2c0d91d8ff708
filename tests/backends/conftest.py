"""Fixtures for the Django Tasks backend: the backend, signal capture, a clean registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal

from taskito.backends import TaskitoBackend
from taskito.registry import registry
from tests.backends.framework import task_backends
from tests.helpers.signals import SignalCapture


@pytest.fixture(autouse=True)
def _forget_registered_tasks() -> Iterator[None]:
    """Enqueueing a Django task registers it in this process's task registry; drop those
    registrations afterwards, so other tests (and worker banners) see the usual tasks."""
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.unregister(name)


@pytest.fixture
def backend() -> TaskitoBackend:
    instance = task_backends["default"]
    assert isinstance(instance, TaskitoBackend)
    return instance


@pytest.fixture
def capture(capture: SignalCapture) -> Callable[[Signal], list[tuple[Any, Any]]]:
    """`events = capture(signal)`: (sender, task_result) of every send of a Django Tasks
    signal until the test ends."""
    return lambda signal: capture(signal, lambda sender, kwargs: (sender, kwargs["task_result"]))
