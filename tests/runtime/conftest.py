"""Fixtures for runtime tests: signal capture and hooks into a running job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal


@pytest.fixture
def capture() -> Iterator[Callable[[Signal], list[dict[str, Any]]]]:
    """`events = capture(signal)`: the kwargs of every send, until the test ends."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def start(signal: Signal) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            events.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return events

    yield start
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def on_start() -> Iterator[Callable[[Callable[..., None]], None]]:
    """`on_start(fn)`: call fn(job_id=..., ...) whenever a job starts (before the task runs),
    as another process would act while the task is running."""
    from taskito import signals

    installed: list[Callable[..., None]] = []

    def install(fn: Callable[..., None]) -> None:
        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            fn(**kwargs)

        signals.job_started.connect(receiver, weak=False)
        installed.append(receiver)

    yield install
    for receiver in installed:
        signals.job_started.disconnect(receiver)
